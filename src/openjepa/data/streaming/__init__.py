"""Streaming datasets (memory O(batch), not O(dataset)): image folders, .tar shards and video folders, decoded
and augmented in DataLoader workers with data/stream.py's (seed, step) contract.

    records = index_image_folder(root)          # or index_shards(root), index_video_folder(root)   (index.py)
    decoder = ImageDecoder(size=224)            # or ClipDecoder(size, frames)                      (decode.py)
    source = StreamingSource(records, decoder, batch_size, seed, rank, world, workers=8)           (loader.py)
    for b in source.batches(start=step): ...
"""

from openjepa.data.streaming.decode import BAD_DATA, ClipDecoder, ImageDecoder
from openjepa.data.streaming.index import (FolderRecords, Records, ShardRecords, SubsetRecords, index_image_folder,
                                           index_shards, index_video_folder)
from openjepa.data.streaming.loader import BadDataError, StreamingSource, sequential_batches
from openjepa.data.streaming.views import ViewsDecoder

__all__ = ["BAD_DATA", "BadDataError", "ClipDecoder", "FolderRecords", "ImageDecoder", "Records", "ShardRecords",
           "StreamingSource", "SubsetRecords", "ViewsDecoder", "index_image_folder", "index_shards",
           "index_video_folder", "sequential_batches"]
