"""3.1's status and sub-status codes (`from zato.sso import status_code`), and SSOError, which
carries them to zato.errors.failure_of and, from there, to the caller as 3.1's envelope:
``{"cid": ..., "status": "error", "sub_status": ["E005001"]}``."""

from __future__ import annotations

from typing import Any

from zato.errors import ClientError

OK, WARNING, ERROR = 'ok', 'warning', 'error'


class status_code:  # noqa: N801 - 3.1's name
    """3.1's codes, by the same dotted names: `status_code.auth.not_allowed` == 'E005001'."""

    class username:  # noqa: N801
        invalid, exists, too_long, has_whitespace = 'E001001', 'E001002', 'E001003', 'E001004'

    class user_id:  # noqa: N801
        invalid = 'E001100'

    class email:  # noqa: N801
        invalid, exists, too_long, has_whitespace, missing = 'E002001', 'E002002', 'E002003', 'E002004', 'E002005'

    class password:  # noqa: N801
        invalid, too_short, too_long, expired = 'E003001', 'E003002', 'E003003', 'E003004'
        w_about_to_exp, e_about_to_exp, must_send_new = 'W003005', 'E003006', 'E003007'

    class app_list:  # noqa: N801
        invalid, no_signup = 'E004001', 'E004002'

    class auth:  # noqa: N801
        not_allowed, locked, invalid_signup_status, not_approved = 'E005001', 'E005002', 'E005003', 'E005004'
        super_user_required, no_such_sign_up_token, sign_up_confirmed = 'E005005', 'E005006', 'E005007'  # noqa: S105

    class metadata:  # noqa: N801
        not_allowed = 'E006001'

    class session:  # noqa: N801
        no_such_session, expired = 'E007001', 'E007002'

    class common:  # noqa: N801
        invalid_operation, invalid_input, missing_input, internal_error = 'E008001', 'E008002', 'E008003', 'E008004'

    class attr:  # noqa: N801
        already_exists, no_such_attr = 'E009001', 'E009002'

    class linked_auth:  # noqa: N801 - new: 3.1 raised a bare ValueError for both
        already_linked, no_such_link = 'E010001', 'E010002'


# The HTTP status of an error envelope, by the first sub-status: a malformed or invalid input is 400,
# everything about who may do what 403 (3.1 answered SSO calls with 200, 400 and 403 only)
_BAD_INPUT = ('E001', 'E002', 'E003001', 'E003002', 'E003003', 'E008001', 'E008002', 'E008003')


class SSOError(ClientError):
    """A refused SSO call: its sub-status codes, answered as 3.1's envelope (and `code` 'sso_error')."""

    code = 'sso_error'

    def __init__(self, *sub_status: str, status: int | None = None) -> None:
        self.sub_status = list(sub_status) or [status_code.auth.not_allowed]
        first = self.sub_status[0]
        self.status = status or (400 if first.startswith(_BAD_INPUT) else 403)
        super().__init__(f'SSO call refused: {", ".join(self.sub_status)}')
        self.body: dict[str, Any] = {'status': ERROR, 'sub_status': self.sub_status}


def not_allowed() -> SSOError:
    """The one answer to every refused login or session check that no inform_if_* flag lets say more."""
    return SSOError(status_code.auth.not_allowed)
