"""Bilingual text: English and Russian originals, equally authentic, neither one primary.

The Protocol was executed "in English and Russian languages with all the texts being equally
authentic": a text is not a translation with a source language, so the two fields are peers.
Ordinary messages carry either language or both; formal documents (working group documents,
meeting minutes) carry both.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from contracts.errors import TEXT_BILINGUAL_REQUIRED, TEXT_EMPTY, fail
from contracts.types import ContractModel

MAX_TEXT_CHARS: Final = 65_536
LANGUAGES: Final = ("en", "ru")

_NON_SPACE: Final = re.compile(r"\S")


def _not_blank(value: str) -> str:
    if _NON_SPACE.search(value) is None:
        raise fail(TEXT_EMPTY, "text is empty or only whitespace")
    return value


TextStr = Annotated[
    str,
    Field(max_length=MAX_TEXT_CHARS, json_schema_extra={"pattern": r"\S"}),
    AfterValidator(_not_blank),
]
"""One language's text: at most MAX_TEXT_CHARS characters, at least one non-space."""


class BilingualText(ContractModel):
    """Text in English (`en`) and/or Russian (`ru`), equally authentic; at least one of them."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [lang], "properties": {lang: {"type": "string"}}} for lang in LANGUAGES
            ]
        }
    )

    en: TextStr | None = Field(default=None, description="The English text.")
    ru: TextStr | None = Field(default=None, description="The Russian text.")

    @model_validator(mode="after")
    def _some_language(self) -> Self:
        if self.en is None and self.ru is None:
            raise fail(TEXT_EMPTY, "text needs 'en', 'ru' or both")
        return self


class FormalText(BilingualText):
    """Text of a formal document: both the English and the Russian original are required."""

    model_config = ConfigDict(json_schema_extra=None)

    en: TextStr = Field(description="The English original.")
    ru: TextStr = Field(description="The Russian original.")

    @model_validator(mode="before")
    @classmethod
    def _both_languages(cls, data: Any) -> Any:
        if isinstance(data, dict):
            missing = [lang for lang in LANGUAGES if data.get(lang) is None]
            if missing:
                raise fail(
                    TEXT_BILINGUAL_REQUIRED,
                    "a formal document needs both the 'en' and the 'ru' original "
                    f"(missing: {', '.join(missing)})",
                )
        return data
