import pytest
from valuedrift.classifier.datasets import DatasetError, load_jsonl


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
    from valuedrift.classifier.context import MARK
    from valuedrift.classifier.training_data import build_splits, shared_data_dir

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


def test_hh_off_topic_pairs_an_opening_request_with_a_long_answer_from_another_dialogue():
    from valuedrift.classifier.datasets import Example
    from valuedrift.classifier.training_data import MIN_DONOR_WORDS, hh_off_topic

    long_answer = " ".join(["word"] * MIN_DONOR_WORDS)
    pool = [Example(f"hh-{i:04d}-chosen", "yes", f"{long_answer} {i}" if i % 2 else "Sure.", "g1" if i % 3 else "g3",
                    split_key=f"hh-{i:04d}") for i in range(40)]
    openings = {e.split_key: f"opening request {e.split_key}" for e in pool}
    built = hh_off_topic(pool, openings, seed=3)
    assert len(built) == 10 and all(b.label == "g5" and b.source == "hh-offtopic" for b in built)
    by_id = {e.id: e for e in pool}
    donors = {e.response: e for e in pool}
    for b in built:
        own = by_id[b.id.removesuffix("-g5")]
        assert b.prompt == openings[own.split_key] and b.split_key == own.split_key
        donor = donors[b.response]
        assert donor.split_key != own.split_key and donor.label in ("g1", "g2")
        assert len(donor.response.split()) >= MIN_DONOR_WORDS
    assert hh_off_topic(pool, openings, seed=3) == built  # seeded
