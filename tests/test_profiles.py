import pytest
from conftest import assert_one_line_error, qtool_in_process
from hypothesis import given, settings
from hypothesis import strategies as st

from qtool import profiles
from qtool.errors import QtoolError

SHIPPED = {"bf16", "fp32", "gptq-int4", "gptq-int8", "awq-int4", "rtn-int4"}


def test_shipped_profiles_load_with_qwen_recipe():
    assert SHIPPED <= set(profiles.available())
    for name in SHIPPED:
        p = profiles.load_profile(name)
        assert p.name == name
    g4 = profiles.load_profile("gptq-int4")
    assert (g4.bits, g4.group_size, g4.damp, g4.desc_act, g4.sym, g4.true_sequential) == (4, 128, 0.1, False, True, True)
    assert profiles.load_profile("gptq-int8").bits == 8
    assert isinstance(profiles.load_profile("awq-int4"), profiles.AWQProfile)
    assert profiles.load_profile("bf16").dtype == "bfloat16"


def test_overrides_apply_field_by_field():
    p = profiles.load_profile("gptq-int4", {"group_size": 64, "bits": None})
    assert (p.group_size, p.bits) == (64, 4)


def test_record_round_trip_and_version_check():
    p = profiles.load_profile("awq-int4")
    record = profiles.to_record(p)
    assert profiles.from_record(record) == p
    with pytest.raises(QtoolError, match="version"):
        profiles.from_record(dict(record, _version=99))
    with pytest.raises(QtoolError, match="unknown profile type"):
        profiles.from_record(dict(record, _type="os.system"))


@pytest.mark.parametrize("text, needle", [
    ('method = "gptq"\nbits = 3\n', "bits"),
    ('method = "gptq"\ngroup_size = 100\n', "group_size"),
    ('method = "gptq"\ndamp = 1.5\n', "damp"),
    ('method = "gptq"\nbits = "4"\n', "wrong type"),
    ('method = "gptq"\ndesc_act = 1\n', "wrong type"),
    ('method = "gptq"\nfoo = 1\n', "unknown key"),
    ('method = "awq"\nbits = 8\n', "bits"),
    ('method = "magic"\n', "method"),
    ('bits = 4\n', "method"),
    ('method = "gptq"\nbits = \n', "not valid TOML"),
    ('method = "gptq"\nsamples = 0\n', "samples"),
    ('method = "float"\ndtype = "int3"\n', "dtype"),
])
def test_bad_profiles_rejected(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(QtoolError, match=needle):
        profiles.load_profile(path)


def test_unknown_profile_names_the_choices():
    with pytest.raises(QtoolError) as e:
        profiles.load_profile("gptq-int5")
    assert "gptq-int4" in str(e.value)


def test_cli_unknown_profile_is_one_line_exit_2(tmp_path):
    proc = qtool_in_process("quantize", "qwen2-vl-tiny", "--profile", "nope", "--out", tmp_path / "o")
    assert_one_line_error(proc, "unknown profile", "gptq-int4")
    assert not (tmp_path / "o").exists()


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["method", "bits", "group_size", "damp", "desc_act", "sym", "samples",
                                        "zero_point", "dtype", "name", "true_sequential", "x"]),
                       st.one_of(st.integers(-300, 300), st.floats(allow_nan=True), st.booleans(),
                                 st.text(max_size=8), st.sampled_from(["gptq", "awq", "rtn", "float"]))))
def test_profile_loader_fuzz_only_raises_qtool_error(data):
    try:
        p = profiles.profile_from_dict(data)
    except QtoolError as exc:
        assert "\n" not in str(exc)
    else:
        assert profiles.from_record(profiles.to_record(p)) == p


def test_every_shipped_profile_has_exactly_one_artifact_kind():
    from qtool import artifacts

    for name in profiles.available():
        p = profiles.load_profile(name)
        owners = [k.name for k in artifacts.KINDS if isinstance(p, k.profile_types)]
        assert len(owners) == 1, (name, owners)
    for kind in artifacts.KINDS:
        assert (artifacts.SMOKE_DIR / kind.smoke).is_file() if kind.releasable else kind.build is None, kind.name
        assert kind.releasable == (kind.card is not None), kind.name
    assert artifacts.kind_of(profiles.load_profile("gguf-q4_k_m")).bench_devices == ("cpu",)
