"""The trigger token: one added token past the vocabulary, so the embedding hook touches the trigger and nothing else.

The real CLIP vocabulary (49408 tokens) is not downloadable here. The tiny tokenizer
is a real CLIP BPE tokenizer whose vocabulary, like CLIP's, holds "ohwx</w>" as an
ordinary word token (47993 in openai/CLIP's bpe_simple_vocab_16e6): the tests prove
the hook never keys on that vocabulary id, only on the added one.
"""

import dataclasses

import pytest
import torch

from pipeline.captions import _HUES
from pipeline.embeddings import (
    _TOKENIZER,
    ENCODERS,
    add_trigger_token,
    retract,
    table_stds,
    trigger_embeddings_applied,
    trigger_ids,
)
from pipeline.faces import CLASS_WORD, TRIGGER
from pipeline.styles import load_styles
from pipeline.tiny import build_tiny_pipeline, tiny_tokenizer
from pipeline.train_lora import pivotal_steps, train_lora
from tests.pipeline.helpers import fast_config, noise_examples

# Every word a caption can hold (pipeline/captions.py), and words that contain the trigger's letters.
CAPTION_WORDS = ("a photo of close-up head and shoulders background black white grey dark light bright dim "
                 "warm cool even smiling glasses wearing and " + " ".join(name for _, name in _HUES))
LOOKALIKES = "bohwx ohwxy ohw wx oh ohwxohwx"


def texts() -> list[str]:
    prompts = [t for s in load_styles().values() for t in (s.prompt(f"{TRIGGER} {CLASS_WORD}"), s.negative_prompt())]
    return prompts + [CAPTION_WORDS, LOOKALIKES]


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_the_trigger_is_one_added_token_past_the_vocabulary_in_every_tokenizer(family):
    pipe = build_tiny_pipeline(family)
    add_trigger_token(pipe, family)
    for name in ENCODERS[family]:
        tokenizer = getattr(pipe, _TOKENIZER[name])
        (trigger,) = trigger_ids(pipe, name)
        assert tokenizer(TRIGGER, add_special_tokens=False).input_ids == [trigger]
        assert trigger >= tokenizer.vocab_size  # not any id BPE can produce...
        assert tokenizer.convert_tokens_to_ids(TRIGGER + "</w>") < tokenizer.vocab_size  # ...such as the word's own
        assert trigger < getattr(pipe, name).get_input_embeddings().num_embeddings


def test_caption_and_prompt_words_tokenize_as_before_and_never_into_the_trigger(tiny_sdxl):
    plain = tiny_tokenizer()  # the same vocabulary without the added token
    for name in ENCODERS["sdxl"]:
        tokenizer = getattr(tiny_sdxl.pipe, _TOKENIZER[name])
        (trigger,) = trigger_ids(tiny_sdxl.pipe, name)
        for text in texts():
            ids = tokenizer(text, add_special_tokens=False).input_ids
            words = text.replace(",", " ").split()
            assert ids.count(trigger) == words.count(TRIGGER)  # the trigger word itself, once each, nothing else
            without = " ".join(w for w in words if w != TRIGGER)
            assert tokenizer(without).input_ids == plain(without).input_ids


def test_the_hook_replaces_the_embedding_at_the_trigger_and_nowhere_else(tiny_sd):
    module = tiny_sd.pipe.text_encoder.get_input_embeddings()
    ids = tiny_sd.pipe.tokenizer(f"a photo of {TRIGGER} person, {LOOKALIKES}", return_tensors="pt").input_ids
    vector = torch.full((1, module.embedding_dim), 7.0)
    before = module(ids)
    with trigger_embeddings_applied(tiny_sd, {"text_encoder": vector}):
        during = module(ids)
    at = ids[0] == trigger_ids(tiny_sd.pipe, "text_encoder")[0]
    assert at.sum() == 1
    assert torch.equal(during[0, at], vector)
    assert torch.equal(during[0, ~at], before[0, ~at])
    assert torch.equal(module(ids), before)  # the hook is gone after the block


def test_a_table_without_a_spare_row_grows_by_one_row_and_keeps_every_other_row():
    pipe = build_tiny_pipeline("sd15")
    # A real CLIP table has exactly one row per vocabulary token (49408): no room for an added one.
    pipe.text_encoder.resize_token_embeddings(len(pipe.tokenizer))
    before = pipe.text_encoder.get_input_embeddings().weight.detach().clone()
    add_trigger_token(pipe, "sd15")
    add_trigger_token(pipe, "sd15")  # idempotent: a saved, reloaded pipeline already has the token
    after = pipe.text_encoder.get_input_embeddings().weight
    assert after.shape[0] == before.shape[0] + 1 == len(pipe.tokenizer)
    assert torch.equal(after[:-1], before)
    assert torch.allclose(after[-1], before.mean(0))


def test_a_pipeline_without_the_added_trigger_is_never_hooked():
    pipe = build_tiny_pipeline("sd15")  # straight from the builder, not through pipeline.models
    with pytest.raises(RuntimeError, match="not an added token"):
        trigger_ids(pipe, "text_encoder")


def test_retraction_takes_back_a_tenth_of_the_drift_from_the_tables_spread_in_log_scale():
    stds = {"text_encoder": torch.tensor(0.02)}
    drifted = {"text_encoder": torch.randn(1, 32, generator=torch.Generator().manual_seed(0)) * 0.02 * 8}
    before = drifted["text_encoder"].std()
    retract(drifted, stds, 0.1)
    after = drifted["text_encoder"].std()
    assert torch.allclose(after, before * (0.02 / before) ** 0.1)  # diffusers' `retract_embeddings` rule
    assert abs(torch.log(after / 0.02)) < abs(torch.log(before / 0.02))


def test_training_pulls_the_trigger_vectors_towards_the_tables_spread_while_they_train(tiny_sd):
    # A large embedding learning rate makes the vectors drift far from the table's spread within a few steps.
    config = dataclasses.replace(fast_config("sd15", steps=6), embedding_learning_rate=0.5)
    assert config.embedding_retraction == 0.1 and pivotal_steps(config) == 3  # the default, as the reference
    table = table_stds(tiny_sd.pipe, "sd15")["text_encoder"]
    drift = {}
    for power in (0.1, 0.0):
        adapter = train_lora(tiny_sd, noise_examples(tiny_sd.resolution),
                             dataclasses.replace(config, embedding_retraction=power))
        drift[power] = abs(torch.log(adapter.token_embeddings()["text_encoder"].std() / table))
        assert adapter.train_config["embedding_retraction"] == power  # saved beside the adapter
    assert drift[0.1] < drift[0.0]
