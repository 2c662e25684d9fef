"""`Request.args` parses the query string as werkzeug's `request.args` does, into a dict."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request as WerkzeugRequest

from shared.request import Request
from shared.settings import Settings

SETTINGS = Settings(
    supabase_url="http://127.0.0.1:1",
    database_url="postgresql://x@127.0.0.1/x",
    upstash_url="http://127.0.0.1:1",
    upstash_token="t",
)


@pytest.mark.parametrize(
    "query",
    [
        "", "a=1", "a=1&a=2&b=", "a", "a=&&b=x", "status=todo,done&status=doing",
        "q=caf%C3%A9+au+lait", "q=%FF%FE", "q=%zz", "x=1;y=2", "%00=nul&v=%00",
        "a=%2B%26%3D", "emoji=%F0%9F%98%80", "a=b=c", "=x", "&", "&&a&", "a=1&&a=&a",
        "q=a+b", "café=au lait", "workspace_id=a0000000-0000-4000-8000-000000000001&limit=50",
        "a=\x00",
    ],
)  # fmt: skip
def test_args_are_werkzeugs(query: str) -> None:
    environ = EnvironBuilder(query_string=query).get_environ()
    http = WerkzeugRequest(environ)
    ours = Request(
        function="f", method="GET", path="/", headers=Headers(), query_string=http.query_string,
        request_id="r", client_ip="127.0.0.1", settings=SETTINGS,
    )  # fmt: skip
    assert ours.args == http.args.to_dict(flat=False)


def test_raw_bytes_that_are_not_utf8_stay_percent_encoded() -> None:
    ours = Request(
        function="f", method="GET", path="/", headers=Headers(), query_string=b"q=\xff",
        request_id="r", client_ip="127.0.0.1", settings=SETTINGS,
    )  # fmt: skip
    assert ours.args == {"q": ["%FF"]}
