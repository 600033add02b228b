"""Reading a checkpoint file a user names, with errors that say which file
and what is wrong with it."""
import os.path as osp
from typing import Callable


def read_checkpoint(path: str, load: Callable[[str], object]) -> dict:
    """``load(path)``, checked: missing, empty, truncated or foreign files
    (anything that does not load as a dict) raise an error naming the
    file and the problem, instead of a bare EOFError or zip error."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    if osp.getsize(path) == 0:
        raise ValueError(f'checkpoint {path!r} is empty (0 bytes)')
    try:
        state = load(path)
    except Exception as err:  # EOFError, zip errors, unpickling errors
        first = str(err).splitlines()[0][:120] if str(err) else ''
        raise ValueError(
            f'checkpoint {path!r} cannot be read: truncated, or not a file '
            f'torch.save wrote ({type(err).__name__}: {first})') from err
    if not isinstance(state, dict):
        raise ValueError(f'checkpoint {path!r} holds a '
                         f'{type(state).__name__}, not the dict of weights '
                         f'mmengine saves')
    return state
