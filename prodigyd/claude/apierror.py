"""Claude API errors as data: the kind `retry_on` matches, and the words the user reads.

The CLI reports a failed API call in three places (measured on 2.1.332, the streams are in
tests/claude_api/captured/):

* `system`/`api_retry` lines while it retries by itself (401, 429, 5xx and 529, ten times
  over about three minutes unless CLAUDE_CODE_MAX_RETRIES says otherwise), with
  `error_status` and `error` ("overloaded", "rate_limit", "server_error",
  "authentication_failed");
* once it gives up, an assistant line that is *not* Claude speaking: `is_api_error_message:
  true`, model `<synthetic>`, top-level `error`, `api_error_status`, `api_error_type`, and
  a text written by the CLI ("Invalid API key · Fix external API key");
* the `result` line: `is_error: true` (with `subtype: "success"`), `api_error_status`,
  `api_error_type`, `terminal_reason: "api_error"`.

The kind comes from the numeric status, else from the message's `error` field, never from
the text, whose wording the CLI changes between releases.
"""

from __future__ import annotations

from dataclasses import dataclass

from prodigyd.failure import ErrorKind

#: The message's `error` field, for a failure that came without an HTTP status (a CLI
#: that is not logged in says "authentication_failed" and never calls the API).
_KIND_BY_ERROR = {
    "authentication_failed": ErrorKind.AUTH,
    "rate_limit": ErrorKind.RATE_LIMIT,
    "server_error": ErrorKind.SERVER_ERROR,
    "overloaded": ErrorKind.SERVER_ERROR,
}

AUTH_HINT = (
    "check ANTHROPIC_API_KEY where the job came from (the shell of `prodigyctl run`, git's "
    "for a hook's job, the daemon's for a watched branch or files), "
    "or run `claude /login` as the user the daemon runs as"
)


def kind_of(status: int | None, error: str | None) -> ErrorKind | None:
    """The kind of an API failure: by HTTP status first, by claude's `error` word second."""
    if status is not None:
        if status in (401, 403):
            return ErrorKind.AUTH
        if status == 429:
            return ErrorKind.RATE_LIMIT
        if status >= 500:
            return ErrorKind.SERVER_ERROR
        if 400 <= status < 500:
            return ErrorKind.CLIENT_ERROR
    return _KIND_BY_ERROR.get(error or "")


@dataclass(frozen=True)
class ApiError:
    """One API failure the CLI gave up on."""

    status: int | None  # `api_error_status`: 401, 429, 529 ...
    error_type: str | None  # `api_error_type`: "authentication_error", "overloaded_error" ...
    error: str | None  # the message's `error`: "authentication_failed", "server_error" ...
    text: str  # the CLI's own words for it

    @property
    def kind(self) -> ErrorKind | None:
        return kind_of(self.status, self.error)

    def describe(self) -> str:
        """`Claude API error 401 (authentication_error): Invalid API key ...`, with a hint
        for an auth failure: the one case where retrying cannot help and the user must act."""
        status = f" {self.status}" if self.status is not None else ""
        label = self.error_type or self.error
        words = f"Claude API error{status}" + (f" ({label})" if label else "")
        if self.text:
            words += f": {self.text}"
        if self.kind is ErrorKind.AUTH:
            words += f"; {AUTH_HINT}"
        return words
