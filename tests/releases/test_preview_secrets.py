"""The promote dialog's manifest diff is rendered on the target cluster, where a chart may
`lookup` a real Secret: values of Secrets never reach the page, fingerprints do."""

from releases.preview import hide_secret_values


def test_a_secrets_values_become_fingerprints_that_still_show_a_change():
    before = {"kind": "Secret", "data": {"PASSWORD": "aHVudGVyMg=="}, "stringData": {"T": "x"}}
    after = {"kind": "Secret", "data": {"PASSWORD": "c3dvcmRmaXNo"}, "stringData": {"T": "x"}}
    shown_before, shown_after = hide_secret_values(before), hide_secret_values(after)
    assert "aHVudGVyMg==" not in str(shown_before) and "c3dvcmRmaXNo" not in str(shown_after)
    assert shown_before["data"]["PASSWORD"].startswith("<hidden ")
    assert shown_before["data"]["PASSWORD"] != shown_after["data"]["PASSWORD"]
    assert shown_before["stringData"] == shown_after["stringData"]
    assert before["data"]["PASSWORD"] == "aHVudGVyMg=="  # the rendered manifest is untouched


def test_other_kinds_pass_through():
    config_map = {"kind": "ConfigMap", "data": {"greeting": "hello"}}
    assert hide_secret_values(config_map) is config_map
