"""Make a training checkpoint publishable (mmseg's publish_model, fixed).

Example::

    python tools/misc/publish_model.py work_dirs/demo/iter_400.pth \
        work_dirs/demo/ssanet_demo.pth   # -> ssanet_demo-<sha256[:8]>.pth

Keeps the weights and the metadata (class names, palette, config) and
drops the optimizer, the schedulers and the message hub. The result loads
with plain ``torch.load(path, weights_only=True)`` in a process that never
imported ``mmseg_ssanet``, which mmseg's own ``tools/misc/publish_model.py``
cannot produce under torch >= 2.6 (it fails to read the training
checkpoint in the first place).
"""
import argparse
import os.path as osp
import sys

from mmseg_ssanet.utils.publish import publish_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('in_file', help='a checkpoint mmengine wrote')
    parser.add_argument('out_file', help='where to write (hash appended)')
    args = parser.parse_args(argv)
    try:
        final, dropped = publish_checkpoint(args.in_file, args.out_file)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    for entry in dropped:
        print(f'dropped from meta (not a plain value): {entry}')
    print(f'published {final} ({osp.getsize(final) / 2**20:.1f} MB)')


if __name__ == '__main__':
    main()
