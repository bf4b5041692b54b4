"""JSON Schemas of the embedded tables (one JSON object per line), checked with `jsonschema`.

Each property carries a `description` in the words an error message uses ("key 'genre' should be
one of [...]"). What one record cannot say (unique keys, one id type per column) sits beside the
schema in :class:`TableSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass

GENRES = ("text", "code", "math")
CONCEPT_SPLITS = ("dev", "eval")
CHOICE_LETTERS = ("A", "B", "C", "D")
READING_SPLITS = ("train", "test")

_INT = {"type": "integer", "description": "an integer"}
_STR = {"type": "string", "pattern": r"\S", "description": "a non-empty string"}
_ID = {"type": ["integer", "string"], "pattern": r"\S", "description": "an integer or a non-empty string"}


def _enum(values) -> dict:
    return {"type": "string", "enum": list(values), "description": f"one of {list(values)}"}


def _record(properties: dict) -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": list(properties),
        "properties": properties,
    }


@dataclass(frozen=True)
class TableSpec:
    schema: dict
    unique: tuple[str, ...] = ()  # key columns whose combination must be unique
    int_columns: tuple[str, ...] = ()  # cast to int64 in the frame
    id_columns: tuple[str, ...] = ()  # int-or-string columns that must not mix the two

    @property
    def names(self) -> list[str]:
        return list(self.schema["properties"])


TABLES: dict[str, TableSpec] = {
    "concepts": TableSpec(
        _record(
            {
                "concept_id": _INT,
                "concept": _STR,
                "genre": _enum(GENRES),
                "split": _enum(CONCEPT_SPLITS),
                "keywords": {
                    "type": "array",
                    "minItems": 1,
                    "items": _STR,
                    "description": "a non-empty list of non-empty strings",
                },
                "steering_instruction": _STR,
                "suppression_instruction": _STR,
            }
        ),
        unique=("concept_id",),
        int_columns=("concept_id",),
    ),
    "instructions": TableSpec(
        _record({"instruction_id": _ID, "instruction": _STR}),
        unique=("instruction_id",),
        id_columns=("instruction_id",),
    ),
    "exemplars": TableSpec(
        _record({"concept_id": _INT, "instruction": _STR, "response": _STR}),
        unique=("concept_id", "instruction", "response"),
        int_columns=("concept_id",),
    ),
    "arithmetic": TableSpec(
        _record(
            {
                "id": _ID,
                "question": _STR,
                "answer": _INT,
                "steps": {"type": "integer", "minimum": 1, "description": "a positive integer (number of steps)"},
            }
        ),
        unique=("id",),
        int_columns=("answer", "steps"),
        id_columns=("id",),
    ),
    "multiple_choice": TableSpec(
        _record(
            {
                "id": _ID,
                "question": _STR,
                "choices": {
                    "type": "array",
                    "minItems": 4,
                    "maxItems": 4,
                    "items": _STR,
                    "description": "a list of exactly 4 non-empty strings",
                },
                "answer": _enum(CHOICE_LETTERS),
                "subject": _STR,
            }
        ),
        unique=("id",),
        id_columns=("id",),
    ),
    "reading": TableSpec(
        _record(
            {
                "id": {"type": "integer", "minimum": 0, "description": "a non-negative integer"},
                "passage": _STR,
                "question": {"type": "string", "pattern": r"\S.*\?$", "description": "a question ending in '?'"},
                "answer": {"type": "boolean", "description": "true or false (a JSON boolean)"},
                "split": _enum(READING_SPLITS),
            }
        ),
        unique=("id",),
        int_columns=("id",),
    ),
}
