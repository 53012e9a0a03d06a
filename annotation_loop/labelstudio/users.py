"""The users of the API key's organization: listed (reports name annotators by email), found
by email, or created (the demo's simulated annotators, each a user of their own so their
annotations keep apart)."""

from __future__ import annotations

from typing import Any

from annotation_loop.labelstudio.transport import ApiArea


class Users(ApiArea):
    """The users of the API key's organization (listing and creating them needs an
    administrator's key)."""

    def user_emails(self) -> dict[str, str]:
        """Each user's email by user id (as annotations' `completed_by` name them)."""
        return {str(user["id"]): str(user.get("email", "")) for user in self._users()}

    def ensure_user(self, email: str, username: str) -> int:
        """The id of the organization's user with `email` (compared without case, as Label
        Studio stores it), created with `username` if there is none."""
        for user in self._users():
            if str(user.get("email", "")).lower() == email.lower():
                return int(user["id"])
        return self.transport.create(
            "/api/users/",
            {"email": email, "username": username},
            refusal=(
                f"Label Studio refused to create the user {email}: use an administrator's API "
                "key, and a username and email no other organization's user has"
            ),
        )

    def _users(self) -> list[dict[str, Any]]:
        return list(self.transport.request("GET", "/api/users/", repeatable=True))
