"""The admin API's one error shape, `{"code": …, "message": …}` with the HTTP status, and the
one place where every error an admin request can meet becomes it."""

from __future__ import annotations

import logging

from egide.admin.policies import InfeasiblePolicy, PolicyError
from egide.maintenance.jobs import JobError
from egide.web.dispatch import json_response
from egide.web.errors import HttpError
from egide.web.http import Response
from egide.web.request import RequestHead

log = logging.getLogger("egide.admin")


class AdminError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def as_admin_error(exc: Exception) -> AdminError | None:
    """`exc` in the admin API's terms; None for a failure of the server's own."""
    if isinstance(exc, AdminError):
        return exc
    if isinstance(exc, PolicyError):
        code = "InfeasiblePolicy" if isinstance(exc, InfeasiblePolicy) else "InvalidPolicy"
        return AdminError(400, code, str(exc))
    if isinstance(exc, JobError):
        status, code = (404, "NoSuchJob") if str(exc).startswith("no job") else (409, "InvalidJob")
        return AdminError(status, code, str(exc))
    if isinstance(exc, HttpError):  # signature and authorization errors keep AWS's codes
        return AdminError(exc.status, exc.code, exc.message)
    return None


def error_response(exc: Exception, head: RequestHead) -> Response:
    error = as_admin_error(exc)
    if error is None:
        log.error("admin API: internal error on %s %s", head.method, head.raw_path, exc_info=exc)
        error = AdminError(500, "InternalError", "internal error (see the log)")
    return json_response(error.status, {"code": error.code, "message": error.message})
