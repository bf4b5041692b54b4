"""Data: the embedded files we ship, loaders for the public benchmark data, and the training-data writer.

Everything returns a pandas DataFrame with a fixed, documented set of columns.

- :mod:`.embedded`: ``data/`` (concepts, instructions, exemplars, utility tasks), checked against the
  JSON Schemas of :mod:`.schemas`;
- :mod:`.axbench`: AxBench Concept500 (local folders and hub copies) and contrastive pairs;
- :mod:`.alpaca`: AlpacaEval; :mod:`.tiny`: tinyGSM8K and tinyMMLU; :mod:`.hub`: hub access;
- :mod:`.reading`: the yes/no reading task (embedded passages and BoolQ) as ``ReadingItem`` lists,
  with its prompt, training target and strict answer parser;
- :mod:`.writer`: concept-laden and neutral responses written by a generator model;
- :mod:`.prepare`: the study's data step (pairs, concepts, evaluation instructions).
"""

from .alpaca import ALPACA_EVAL_SIZE, HUB_ALPACA_EVAL, load_alpaca_eval
from .axbench import (
    AXBENCH_NEGATIVE_CONCEPT,
    AXBENCH_POSITIVES_PER_CONCEPT,
    CONTRASTIVE_COLUMNS,
    HUB_AXBENCH_CONCEPT10,
    HUB_AXBENCH_CONCEPT16K,
    HUB_CONTRASTIVE,
    TIDY_AXBENCH_COLUMNS,
    concept_positives,
    load_axbench_concept500,
    load_axbench_hub,
    load_contrastive_pairs,
    read_axbench_metadata,
    tidy_axbench,
    tidy_contrastive,
)
from .embedded import (
    default_data_dir,
    load_embedded,
    read_arithmetic,
    read_concepts,
    read_exemplars,
    read_instructions,
    read_jsonl_table,
    read_multiple_choice,
    read_reading,
)
from .hub import DatasetUnavailableError
from .reading import (
    BOOLQ_SPLITS,
    HUB_BOOLQ,
    ReadingItem,
    answer_text,
    embedded_reading,
    load_boolq,
    parse_answer,
    reading_prompt,
)
from .schemas import CHOICE_LETTERS, CONCEPT_SPLITS, GENRES, READING_SPLITS, TABLES
from .tables import DataValidationError
from .tiny import (
    ARITHMETIC_COLUMNS,
    MULTIPLE_CHOICE_COLUMNS,
    load_tiny_gsm8k,
    load_tiny_mmlu,
    normalize_tiny_gsm8k,
    normalize_tiny_mmlu,
    parse_gsm8k_answer,
)

__all__ = [
    "ALPACA_EVAL_SIZE",
    "ARITHMETIC_COLUMNS",
    "AXBENCH_NEGATIVE_CONCEPT",
    "AXBENCH_POSITIVES_PER_CONCEPT",
    "BOOLQ_SPLITS",
    "CHOICE_LETTERS",
    "CONCEPT_SPLITS",
    "CONTRASTIVE_COLUMNS",
    "GENRES",
    "HUB_ALPACA_EVAL",
    "HUB_AXBENCH_CONCEPT10",
    "HUB_AXBENCH_CONCEPT16K",
    "HUB_BOOLQ",
    "HUB_CONTRASTIVE",
    "MULTIPLE_CHOICE_COLUMNS",
    "READING_SPLITS",
    "TABLES",
    "TIDY_AXBENCH_COLUMNS",
    "DataValidationError",
    "DatasetUnavailableError",
    "ReadingItem",
    "answer_text",
    "concept_positives",
    "default_data_dir",
    "embedded_reading",
    "load_alpaca_eval",
    "load_axbench_concept500",
    "load_axbench_hub",
    "load_boolq",
    "load_contrastive_pairs",
    "load_embedded",
    "load_tiny_gsm8k",
    "load_tiny_mmlu",
    "normalize_tiny_gsm8k",
    "normalize_tiny_mmlu",
    "parse_answer",
    "parse_gsm8k_answer",
    "read_arithmetic",
    "read_axbench_metadata",
    "read_concepts",
    "read_exemplars",
    "read_instructions",
    "read_jsonl_table",
    "read_multiple_choice",
    "read_reading",
    "reading_prompt",
    "tidy_axbench",
    "tidy_contrastive",
]
