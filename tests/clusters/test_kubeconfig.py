import stat

import pytest

from clusters.kubeconfig import kubeconfig_file


def test_kubeconfig_lives_in_a_private_file_only_during_the_call():
    with kubeconfig_file("apiVersion: v1\nclusters: []\n") as path:
        assert path.read_text().startswith("apiVersion: v1")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not path.exists() and not path.parent.exists()


def test_kubeconfig_file_is_removed_even_when_the_call_fails():
    with pytest.raises(RuntimeError), kubeconfig_file("x") as path:
        raise RuntimeError("helm failed")
    assert not path.parent.exists()
