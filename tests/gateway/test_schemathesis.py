"""Schemathesis against the OpenAPI document, signed in as each role: no 5xx, no response that
breaks the documented schema, status code or content type. At least 1,000 generated cases.

The app runs in-process (ASGI) on a seeded database; logout and disabling users are left out
(they would end the session the other cases use).
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.gateway.conftest import World

ROLES = {
    "admin": "admin",
    "operator": "op_anna",
    "trader": "trader_li",
    "auditor": "auditor_wu",
    "enterprise": "cathode_user",
}
EXAMPLES_PER_OPERATION = 7
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_api_conforms_for_every_role(world: World) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app).exclude(
        path_regex=r"^/api/v1/(auth/logout|users/\{username\}/disable)$"
    )
    cases = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    for user in ROLES.values():
        headers = world.login(user)
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def run(case: schemathesis.Case) -> None:
                nonlocal cases
                cases += 1
                response = case.call(headers=headers)  # noqa: B023 - run() is called at once
                case.validate_response(response, checks=CHECKS)

            run()
    assert len(operations) >= 30
    assert cases >= 1000, f"only {cases} generated cases ran"
