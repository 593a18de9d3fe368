import pytest

from classifier.datasets import DatasetError, load_jsonl


def test_loads_codes_and_names(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"id": "1", "prompt": "a", "response": "b", "label": "g2"}\n\n'
                 '{"id": "2", "prompt": "a", "response": "b", "label": "off_topic", "source": "x"}\n')
    ex = load_jsonl(p)
    assert [e.label for e in ex] == ["g2", "g5"] and ex[1].source == "x"


@pytest.mark.parametrize("line, fragment", [
    ("{not json", "not valid JSON"),
    ("[1]", "expected a JSON object"),
    ('{"id": "1", "prompt": "a", "label": "g1"}', "'response' is missing"),
    ('{"id": "1", "prompt": "a", "response": "b", "label": "g9"}', "unknown category 'g9'"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, fragment):
    p = tmp_path / "d.jsonl"
    p.write_text('{"id": "0", "prompt": "a", "response": "b", "label": "g1"}\n' + line + "\n")
    with pytest.raises(DatasetError, match=fragment) as err:
        load_jsonl(p)
    assert str(err.value).startswith(f"{p}:2:")


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_jsonl(tmp_path / "nope.jsonl")


def test_context_turns_change_only_the_hh_rlhf_prompts():
    from classifier.context import MARK
    from classifier.training_data import build_splits, shared_data_dir

    if not (shared_data_dir() / "hh-rlhf").is_dir():
        pytest.skip(f"shared data not found at {shared_data_dir()} (set VALUEDRIFT_SHARED_DATA)")
    plain, ctx = build_splits()["val"], build_splits(context_turns=4)["val"]
    assert [e.id for e in plain] == [e.id for e in ctx] and [e.response for e in plain] == [e.response for e in ctx]
    for a, b in zip(plain, ctx, strict=True):
        if a.source.startswith("hh"):
            assert b.prompt.startswith(a.prompt)
        else:
            assert b.prompt == a.prompt
    with_turns = [b for b in ctx if MARK in b.prompt]
    assert len(with_turns) > len(ctx) // 4 and all(b.source.startswith("hh") for b in with_turns)
