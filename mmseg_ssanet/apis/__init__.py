from .inference import (CheckpointMismatchError, collect_images, draw_overlays,
                        load_segmentor, read_image)
from .sampling import draw_sampling_points, sampling_points_for

__all__ = [
    'CheckpointMismatchError', 'collect_images', 'draw_overlays',
    'load_segmentor', 'read_image', 'draw_sampling_points',
    'sampling_points_for'
]
