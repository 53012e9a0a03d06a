"""The Label Studio client the pipelines use: bulk, paged, server-side-filtered REST calls.

Layers, each a module with one job:
- `transport` (with `auth`): one request, authenticated, retried when that is safe, decoded;
  a refusal raises `LabelStudioHTTPError` (status, method, path, what to do next).
  `chunked_imports` cuts bulk imports into requests and resumes one that failed in doubt.
- one module per API area: `projects` (and saved views), `storages` (one find-or-create for
  every kind), `ml_backends` (and the webhook), `tasks` (paged by `task_pages`), `predictions`,
  `uploads` (files uploaded to Label Studio, read through it);
  `filters` builds every Data Manager filter; `queues` publishes the annotators' tabs.
- `client.LabelStudioClient`: the facade the rest of the loop calls, every area's methods
  over one transport.

Plain httpx rather than `label_studio_sdk`: every call here is one request to a documented
endpoint, the bulk reads need exact control of the Data Manager query (keyset paging,
`include=`, `resolve_uri=false`) and no pydantic model per task, and one error mapping
(`Transport.request`) serves them all, retries included.
"""

from annotation_loop.labelstudio.client import LabelStudioClient
from annotation_loop.labelstudio.predictions import PredictionIn
from annotation_loop.labelstudio.tasks import LabelledTask, TaskRef

__all__ = ["LabelStudioClient", "LabelledTask", "PredictionIn", "TaskRef"]
