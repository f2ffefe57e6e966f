"""MNIST and Fashion-MNIST as host uint8 arrays, with the fixed splits of :mod:`.splits`."""
from .idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from .sources import IDX_SETS, find_file
from .splits import check_split

__all__ = ["load_idx_split", "IDX_SPLITS", "NUM_VAL"]

IDX_SPLITS = ("train", "val", "train+val", "test")
NUM_VAL = 10_000


def _read_pair(name, prefix, data_dir):
    files = IDX_SETS[name]["files"]
    img_name, lab_name = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
    magic, count, sha, md5 = files[img_name]
    assert magic == IMAGES_MAGIC
    images = read_idx(find_file(name, img_name, data_dir), IMAGES_MAGIC, count, (28, 28), sha, md5)
    magic, count, sha, md5 = files[lab_name]
    labels = read_idx(find_file(name, lab_name, data_dir), LABELS_MAGIC, count, (), sha, md5)
    return images, labels


def load_idx_split(name, split, data_dir=None):
    """Images (N, 28, 28) uint8 and labels (N,) uint8 (host) of one split.

    ``train`` = the first 50,000 training images, ``val`` = the last 10,000, ``train+val``
    = all 60,000, ``test`` = the 10,000 official test images.
    """
    check_split(name, split, IDX_SPLITS)
    if split == "test":
        return _read_pair(name, "t10k", data_dir)
    images, labels = _read_pair(name, "train", data_dir)
    if split == "train":
        return images[:-NUM_VAL], labels[:-NUM_VAL]
    if split == "val":
        return images[-NUM_VAL:], labels[-NUM_VAL:]
    return images, labels
