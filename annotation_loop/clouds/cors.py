"""Does the bucket let Label Studio's browser tab load its images? (CORS rules)

Annotators' browsers fetch presigned URLs straight from the bucket; without a CORS rule
for GET from the Label Studio origin, images stay blank. We only warn: fixing it needs
rights the loop should not have. Each cloud knows how to read its rules and the fix
(`Cloud.missing_cors_fix`), which uses the files in cloud_config/.
"""

from __future__ import annotations

import logging

from annotation_loop.clouds import cloud_of
from annotation_loop.data.storage import DataSource
from annotation_loop.settings import Settings

logger = logging.getLogger(__name__)


def missing_cors_fix(source: DataSource, settings: Settings | None = None) -> str | None:
    """The command that adds the missing CORS rules, or None if the bucket has some.
    `settings` hold the credentials; None: this process's own (`Settings()`)."""
    if settings is None:
        settings = Settings.from_environment()
    return cloud_of(source.root_uri).missing_cors_fix(source, settings)


def warn_if_cors_missing(source: DataSource, settings: Settings | None = None) -> None:
    """Logs the fix when the bucket has no CORS rules; never fails the run."""
    try:
        fix = missing_cors_fix(source, settings)
    except Exception as exc:  # a check we cannot make must not stop the loop
        logger.info("Could not read the CORS rules of %s: %s", source.root_uri, exc)
        return
    if fix:
        logger.warning(
            "%s has no CORS rules, so annotators' browsers cannot load its images: %s",
            source.root_uri,
            fix,
        )
