"""target-pardot: the Singer target that keeps Pardot prospects in line with identify records."""

from __future__ import annotations

import sys
from typing import Any

from singer_sdk import Target
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_pardot.errors import QuotaExceededError, TargetPardotError
from target_pardot.reader import NumberedSingerReader
from target_pardot.run import PardotRun
from target_pardot.settings import CONFIG_SCHEMA, Settings
from target_pardot.sink import PardotSink


class TargetPardot(Target):
    """Writes identify-shaped records into Salesforce Pardot (Account Engagement) prospects."""

    name = "target-pardot"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = PardotSink
    message_reader_class = NumberedSingerReader

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = Settings.from_config(self.config)
        self._run: PardotRun | None = None

    @property
    def pardot_run(self) -> PardotRun:
        if self._run is None:
            self._run = PardotRun(self.settings)
        return self._run

    def process_endofpipe(self) -> None:
        super().process_endofpipe()
        if self._run is not None:
            self._run.finish()

    def close_run(self) -> None:
        if self._run is not None:
            self._run.close()

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        file_input: Any = None,
    ) -> None:
        """As the SDK's invoke, but a failure that stops the run ends in one clear message."""
        # Skip Target.invoke (it would start listening) but keep the base class's --about.
        super(Target, cls).invoke(about=about, about_format=about_format)
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        target = cls(config=config.config, validate_config=True, parse_env_config=config.parse_env)
        try:
            target.listen(file_input)
        except (TargetPardotError, InvalidInputLine) as error:
            if target._run is not None:
                target._run.finish()
            cls.logger.error("target-pardot stopped: %s", error)
            if isinstance(error, QuotaExceededError) and target._run is not None:
                applied = target._run.report.applied()
                cls.logger.error(
                    "Pardot's daily API limit for this business unit is used up after %d "
                    "records were applied. The rest will be sent by the next run once the "
                    "limit resets (midnight in the Pardot account's time zone).",
                    applied,
                )
            cls.logger.error(
                "STATE was not advanced past the records that were not applied; the next run "
                "sends them again."
            )
            sys.exit(1)
        finally:
            target.close_run()
