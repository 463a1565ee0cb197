"""Data sets (packaged and user files), tokenizers and batching: labelled texts for
classification, sentence pairs for translation, and images.

Example:
    >>> from attnlab.data import load_dataset, train_tokenizer
    >>> splits = load_dataset("mr").split(seed=0)  # doctest: +SKIP
    >>> tok = train_tokenizer(splits.train.texts, kind="wordpiece")  # doctest: +SKIP
"""

from __future__ import annotations

from attnlab.data.datasets import (
    DATASETS,
    DatasetInfo,
    dataset_installed,
    install_dataset,
    list_datasets,
    load_data,
    load_dataset,
)
from attnlab.data.pair_corpora import PAIR_DATASETS, PairInfo, load_lexicon, load_pairs
from attnlab.data.pair_tokenizer import PairTokenizer, train_pair_tokenizer
from attnlab.data.pairs import PairDataset, PairSplits, pairs_from_rows, read_pairs
from attnlab.data.image_batches import Augment, ImageBatches
from attnlab.data.image_folder import BadImageError, read_image_folder
from attnlab.data.images import (
    IMAGE_DATASETS,
    ImageDataset,
    ImageSplits,
    image_dataset_installed,
    load_images,
)
from attnlab.data.text import DataError, Splits, TextDataset, from_rows, read_file
from attnlab.data.tokenizers import TextTokenizer, train_tokenizer

__all__ = [
    "DATASETS",
    "PAIR_DATASETS",
    "DataError",
    "DatasetInfo",
    "PairDataset",
    "PairInfo",
    "PairSplits",
    "PairTokenizer",
    "IMAGE_DATASETS",
    "Augment",
    "BadImageError",
    "ImageBatches",
    "ImageDataset",
    "ImageSplits",
    "Splits",
    "TextDataset",
    "TextTokenizer",
    "dataset_installed",
    "from_rows",
    "image_dataset_installed",
    "install_dataset",
    "list_datasets",
    "load_data",
    "load_dataset",
    "load_lexicon",
    "load_pairs",
    "pairs_from_rows",
    "read_file",
    "read_pairs",
    "train_pair_tokenizer",
    "load_images",
    "read_image_folder",
    "train_tokenizer",
]
