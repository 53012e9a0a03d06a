"""The base of the materializers for reports that carry an on-disk table (a batch's tasks,
its predictions): the report's other fields as JSON, the table as its SQLite file, copied
through the artifact store in a stream, so neither side holds it in memory."""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from pydantic import BaseModel
from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer

from annotation_loop.data.sqlite_file import SQLiteTable
from materializers.artifact_files import files, read_table

FIELDS_FILE = "report.json"
TABLE_FILE = "table.sqlite"
FOLDER = files("a report with a table", [FIELDS_FILE, TABLE_FILE])


class TableBackedMaterializer(BaseMaterializer):
    SKIP_REGISTRATION: ClassVar[bool] = True  # a base: its subclasses name their types
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA
    TABLE_FIELD: ClassVar[str]  # the report's field that holds the table

    def load(self, data_type: type[Any]) -> BaseModel:
        FOLDER.check_folder(self.artifact_store, self.uri)
        with self.artifact_store.open(os.path.join(self.uri, FIELDS_FILE), "r") as handle:
            fields = json.loads(handle.read())
        table_type: type[SQLiteTable] = data_type.model_fields[self.TABLE_FIELD].annotation
        table = read_table(self.artifact_store, self.uri, TABLE_FILE, table_type.load)
        return data_type.model_validate({**fields, self.TABLE_FIELD: table})

    def save(self, data: BaseModel) -> None:
        with self.artifact_store.open(os.path.join(self.uri, FIELDS_FILE), "w") as handle:
            handle.write(data.model_dump_json(exclude={self.TABLE_FIELD}))
        table: SQLiteTable = getattr(data, self.TABLE_FIELD)
        with self.artifact_store.open(os.path.join(self.uri, TABLE_FILE), "wb") as handle:
            table.dump(handle)
