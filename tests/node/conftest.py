import pytest

from node.users import Role, add_user


@pytest.fixture
def tokens(node):
    """A writer's and a reader's tokens for the HTTP tests."""
    path = node.config.users_file
    return {
        "writer": add_user(path, "clerk", Role.WRITER),
        "reader": add_user(path, "analyst", Role.READER),
    }
