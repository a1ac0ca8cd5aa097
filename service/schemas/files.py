"""The Files API's objects, in OpenAI's shape (`openai.types.FileObject`, `FileDeleted`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

# What a client may upload a file for (OpenAI's `FilePurpose`); `batch_output` is the gateway's
# own, for a batch's output and error files.
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
FilePurpose = Literal[
    "assistants", "batch", "fine-tune", "vision", "user_data", "evals", "batch_output"
]


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    expires_at: int | None = None
    filename: str
    purpose: str
    # Deprecated by OpenAI, still in its object: a stored file is always whole here.
    status: Literal["processed"] = "processed"
    status_details: str | None = None


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True
