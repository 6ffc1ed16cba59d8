"""Every exception the service raises on purpose, flat and noun-named (as rq does).

Each carries a sentence a user can act on (`str(exc)`); the HTTP and CLI edges turn them
into status codes and exit codes. Anything that is not a `SeacoError` is a bug.
"""

from __future__ import annotations


class SeacoError(Exception):
    """Base class: the message is shown to the user as is."""


# --- audio input -------------------------------------------------------------------------
class AudioError(SeacoError):
    """The uploaded file cannot be used as audio."""


class EmptyAudioError(AudioError):
    """The file is empty or holds no samples."""


class NotAudioError(AudioError):
    """The file is not a container we can read, or it has no audio stream."""


class CorruptAudioError(AudioError):
    """The container opened but its audio could not be decoded."""


class AudioTooLargeError(AudioError):
    """The file is bigger than the configured upload limit."""


class AudioTooLongError(AudioError):
    """The audio lasts longer than the configured duration limit."""


# --- models ------------------------------------------------------------------------------
class ModelError(SeacoError):
    """A model could not be found, validated or loaded."""


class ModelFilesMissingError(ModelError):
    """A local model directory lacks a file funasr would silently do without."""


# --- job store -----------------------------------------------------------------------------
class InvalidCallbackUrlError(SeacoError):
    """A job's callback_url is not an http(s) URL this service may call."""


class StoreError(SeacoError):
    """The job store refused an operation."""


class JobNotFoundError(StoreError):
    """No job has this id."""


class QueueFullError(StoreError):
    """The queue already holds the configured maximum number of waiting jobs."""


class InvalidJobStateError(StoreError):
    """The job is not in a state that allows the operation (e.g. cancelling a done job)."""


class DatabaseError(StoreError):
    """jobs.db could not be written (locked too long, or an I/O error); nothing was changed."""


class DatabaseBusyError(DatabaseError):
    """Another process held jobs.db's write lock for longer than SEACO_DB_BUSY_TIMEOUT_S."""


class DatabaseUnusableError(StoreError):
    """SQLite failed in a way the store has no better name for (most often a read: the file
    is unreadable, damaged or locked). The message quotes SQLite. Not a `DatabaseError`, so
    the worker fails the job it was on rather than retrying it forever."""


# --- exports -------------------------------------------------------------------------------
class UnknownFormatError(SeacoError):
    """The requested export format is not one of export.FORMATS."""


class NotExportableError(SeacoError):
    """The job has no transcript to export (it is not done)."""


# --- tools ---------------------------------------------------------------------------------
class ManifestError(SeacoError):
    """`seaco eval`: the manifest or a file it names cannot be used (the message says where)."""


class ApiError(SeacoError):
    """`seaco submit`: the server refused a request for a reason waiting will not fix."""


# --- storage -------------------------------------------------------------------------------
class StorageFullError(SeacoError):
    """The disk holding the data directory is full; nothing was kept."""


class ConfigError(SeacoError):
    """A setting has a value we cannot use."""
