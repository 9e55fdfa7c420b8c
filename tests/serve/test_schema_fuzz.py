"""Schemathesis generates requests from the app's OpenAPI schema, valid and invalid:
none may get a 5xx. Run with and without a token, so the auth path is fuzzed too."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from neuralab.serve import ServeSettings, create_app


@pytest.mark.parametrize("token", [None, "t0ken"], ids=["open", "token"])
def test_no_request_gets_a_server_error(served, token):
    app = create_app(ServeSettings(runs_dir=served["root"], token=token))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # Random names only ever meet the 404; most cases aim at the served models instead.
    names = st.sampled_from([served["digits"].name, served["houses"].name, None])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9

    for operation in operations:

        @given(case=operation.as_strategy(), name=names)
        @settings(
            max_examples=15,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case, name):
            if name is not None and "name" in (case.path_parameters or {}):
                case.path_parameters["name"] = name
            case.call_and_validate(checks=[not_a_server_error])

        check()
