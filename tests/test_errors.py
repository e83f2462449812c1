"""Error messages a user reads when the run stops."""

from __future__ import annotations

from target_pardot.errors import ConfigurationError


def test_a_configuration_error_reads_as_sentences_whatever_pardots_punctuation() -> None:
    # Pardot's own messages end with a period (88: "... version 4 of the API.").
    for message in ("Your account must use version 4 of the API.", "Invalid business unit"):
        text = str(ConfigurationError(88, message, status=400, endpoint="v3.prospect.query"))
        assert ".." not in text
        assert text.startswith(f"Pardot error 88 on v3.prospect.query (HTTP 400): {message}")
        assert text.endswith(
            ". To fix: this business unit allows several prospects per email; set api_version "
            "to 4 (or 5)."
        )
