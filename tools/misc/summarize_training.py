"""Summarise a short training run from mmengine's scalar log: is the loss
finite and falling, seconds per iteration, peak GPU memory.

Reads ``WORK_DIR/<timestamp>/vis_data/scalars.json`` (the newest run in
the folder), one JSON object per logged iteration. Prints one markdown
row (``--header`` first prints the header) and exits 1 when a loss is not
finite or the mean of the last fifth of the losses is not below the first
fifth's (``--require finite``: only the former, for runs too short to
fall). Used by ``.dev_scripts/device_check.py`` after ``mim train``.

    python tools/misc/summarize_training.py work_dirs/r101_short --name fp32
"""
import argparse
import glob
import json
import math
import os.path as osp
import sys

HEADER = ('| run | iterations | loss first / last fifth | finite, falling '
          '| s / iter (last third) | iter / s | peak MB (iter 1; after) |\n'
          '| --- | --- | --- | --- | --- | --- | --- |')


def read_scalars(work_dir):
    """The logged iterations of the newest run under ``work_dir``."""
    logs = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not logs:
        raise SystemExit(f'no mmengine scalar log (*/vis_data/scalars.json) '
                         f'under {work_dir}: did the training start?')
    rows = []
    with open(logs[-1]) as f:
        for line in f:
            row = json.loads(line)
            if 'loss' in row:  # training iterations (not validation)
                rows.append(row)
    if not rows:
        raise SystemExit(f'{logs[-1]} holds no training iteration')
    return rows


def summarize(rows):
    losses = [r['loss'] for r in rows]
    fifth = max(1, len(losses) // 5)
    first = sum(losses[:fifth]) / fifth
    last = sum(losses[-fifth:]) / fifth
    finite = all(math.isfinite(x) for x in losses)
    tail = sorted(r['time'] for r in rows[-max(1, len(rows) // 3):])
    seconds = tail[len(tail) // 2]
    memory = [r.get('memory') for r in rows]
    return dict(
        iterations=rows[-1].get('iter', len(rows)),
        first=first,
        last=last,
        finite=finite,
        falling=finite and last < first,
        seconds=seconds,
        memory_first=memory[0],
        memory_after=max((m for m in memory[1:] if m is not None),
                         default=None))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir', help='the --work-dir of the run')
    parser.add_argument('--name', default='', help='the row\'s label')
    parser.add_argument(
        '--header', action='store_true', help='print the table header first')
    parser.add_argument(
        '--require',
        choices=['falling', 'finite'],
        default='falling',
        help='what the loss must do for exit status 0 '
        '(finite: a run of a step or two, where falling '
        'is chance)')
    args = parser.parse_args(argv)
    s = summarize(read_scalars(args.work_dir))
    if args.header:
        print(HEADER)
    print(f"| {args.name} | {s['iterations']} | {s['first']:.3f} / "
          f"{s['last']:.3f} | {'yes' if s['finite'] else 'NO'}, "
          f"{'yes' if s['falling'] else 'NO'} | {s['seconds']:.3f} | "
          f"{1 / s['seconds']:.2f} | {s['memory_first']}; "
          f"{s['memory_after']} |")
    return 0 if s[args.require] else 1


if __name__ == '__main__':
    sys.exit(main())
