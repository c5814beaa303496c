"""The pooled text embedding is taken at end-of-text, as in every other tool, even after the trigger token is added.

Tested as the real models meet it: CLIP's own 49,408-id BPE vocabulary (open_clip's
`bpe_simple_vocab_16e6.txt.gz`, shipped in tests/fixtures/clip_vocab with its MIT licence)
and the real SD1.5/SDXL text-encoder configs' legacy `eos_token_id: 2`, at tiny widths. With
that value transformers pools at `argmax(input_ids)`, which the trigger's added id (49408)
wins: the tiny fixtures (eos 49407, a tiny vocabulary) could never show it.
"""

import gzip
from pathlib import Path

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from pipeline.embeddings import ENCODERS, trigger_embeddings_applied
from pipeline.faces import CLASS_WORD, TRIGGER
from pipeline.models import wrap_pipeline
from pipeline.tiny import _bytes_to_unicode, build_tiny_pipeline
from pipeline.train_lora import encode_tokens, tokenize_captions

VOCAB_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "clip_vocab" / "bpe_simple_vocab_16e6.txt.gz"
END_OF_TEXT = 49407
WITH_TRIGGER = f"professional headshot photo of {TRIGGER} {CLASS_WORD}, navy suit, soft window light, grey backdrop"
WITHOUT_TRIGGER = "professional headshot photo of a person, navy suit, soft window light, grey backdrop"


def real_clip_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """CLIP's tokenizer built exactly as openai/CLIP's SimpleTokenizer builds its vocabulary from the BPE file."""
    lines = gzip.open(VOCAB_FILE).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={token: i for i, token in enumerate(vocab)}, merges=merges, model_max_length=77,
                         pad_token=pad_token)


def real_config_text_encoder(cls, seed: int):
    """The real configs' ids (bos 0, eos 2, pad 1, 49,408 rows) at the tiny pipeline's widths."""
    config = CLIPTextConfig(vocab_size=49408, bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=32,
                            intermediate_size=37, num_attention_heads=4, num_hidden_layers=5, projection_dim=32,
                            max_position_embeddings=77, layer_norm_eps=1e-5)
    torch.manual_seed(seed)
    return cls(config)


def real_vocabulary_pipeline(family: str):
    """The tiny pipeline with CLIP's real tokenizers and real-config text encoders (as loaded, before wrapping)."""
    pipe = build_tiny_pipeline(family)
    pipe.tokenizer = real_clip_tokenizer()
    pipe.text_encoder = real_config_text_encoder(CLIPTextModel, seed=1)
    if family == "sdxl":
        pipe.tokenizer_2 = real_clip_tokenizer(pad_token="!")  # SDXL's second tokenizer pads with "!" (id 0)
        pipe.text_encoder_2 = real_config_text_encoder(CLIPTextModelWithProjection, seed=2)
    return pipe


@pytest.fixture(scope="module", params=["sd15", "sdxl"])
def bases(request):
    """(wrapped base with the trigger token, the same weights unwrapped as loaded) for one family."""
    family = request.param
    wrapped = wrap_pipeline(real_vocabulary_pipeline(family), family, f"real-vocab-{family}", torch.device("cpu"),
                            torch.float32, is_demo=True)
    return wrapped, real_vocabulary_pipeline(family)


def test_the_real_vocabulary_is_clips_own():
    tokenizer = real_clip_tokenizer()
    assert len(tokenizer) == 49408 > 256 and tokenizer.model_max_length == 77
    assert tokenizer.eos_token_id == END_OF_TEXT
    assert tokenizer(TRIGGER, add_special_tokens=False).input_ids == [47993]  # "ohwx</w>", an ordinary word


def pooled_encoder(base):
    return base.pipe.text_encoder_2 if base.family == "sdxl" else base.pipe.text_encoder


def pooled_at(base, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """What pooling at `positions` gives: the final hidden state there, projected where the encoder projects."""
    encoder = pooled_encoder(base)
    out = encoder(ids, output_hidden_states=True)
    picked = out.last_hidden_state[torch.arange(ids.shape[0]), positions]
    return encoder.text_projection(picked) if hasattr(encoder, "text_projection") else picked


def pooled_of(base, ids: torch.Tensor) -> torch.Tensor:
    encoder = pooled_encoder(base)
    out = encoder(ids)
    return out.text_embeds if hasattr(encoder, "text_projection") else out.pooler_output


@torch.no_grad()
def test_training_pools_at_end_of_text_not_at_the_trigger(bases):
    base, _ = bases
    name = ENCODERS[base.family][-1]
    ids = tokenize_captions(base, [WITH_TRIGGER])[name]
    end, trigger = [(ids[0] == i).nonzero()[0] for i in (END_OF_TEXT, ids.max())]
    assert ids.max() > END_OF_TEXT and trigger < end  # the added trigger id is the highest in the prompt
    vectors = {n: torch.randn(1, 32) for n in ENCODERS[base.family]}  # an adapter's trained vectors
    with trigger_embeddings_applied(base, vectors):
        _, pooled = encode_tokens(base, tokenize_captions(base, [WITH_TRIGGER]))
        pooled = pooled if pooled is not None else pooled_of(base, ids)
        expected, at_trigger = pooled_at(base, ids, end), pooled_at(base, ids, trigger)
    assert torch.equal(pooled, expected)
    assert not torch.allclose(pooled, at_trigger)


@torch.no_grad()
def test_generation_pools_at_end_of_text_like_training(bases):
    base, _ = bases
    if base.family != "sdxl":
        pytest.skip("only SDXL's pipeline uses a pooled embedding at generation (the training test covers SD1.5)")
    vectors = {n: torch.randn(1, 32) for n in ENCODERS["sdxl"]}
    with trigger_embeddings_applied(base, vectors):
        _, _, pooled, _ = base.pipe.encode_prompt(prompt=[WITH_TRIGGER], device=base.device, num_images_per_prompt=1,
                                                  do_classifier_free_guidance=False)
        ids = tokenize_captions(base, [WITH_TRIGGER])["text_encoder_2"]
        expected = pooled_at(base, ids, (ids[0] == END_OF_TEXT).nonzero()[0])
        _, trained = encode_tokens(base, tokenize_captions(base, [WITH_TRIGGER]))
    assert torch.equal(pooled, expected)
    assert torch.equal(pooled, trained)


@torch.no_grad()
def test_a_prompt_without_the_trigger_encodes_bit_identically_to_the_model_as_loaded(bases):
    base, as_loaded = bases
    for name in ENCODERS[base.family]:
        tokenizer = getattr(as_loaded, "tokenizer_2" if name == "text_encoder_2" else "tokenizer")
        ids = tokenizer([WITHOUT_TRIGGER], padding="max_length", max_length=77, truncation=True,
                        return_tensors="pt").input_ids
        assert torch.equal(ids, tokenize_captions(base, [WITHOUT_TRIGGER])[name])
        before, after = getattr(as_loaded, name)(ids), getattr(base.pipe, name)(ids)
        assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    if base.family == "sdxl":
        kwargs = dict(prompt=[WITHOUT_TRIGGER], device=base.device, num_images_per_prompt=1,
                      do_classifier_free_guidance=False)
        for before, after in zip(as_loaded.encode_prompt(**kwargs), base.pipe.encode_prompt(**kwargs)):
            assert (before is None and after is None) or torch.equal(before, after)


def test_a_saved_pipeline_keeps_end_of_text_pooling(bases, tmp_path):
    base, _ = bases
    for name in ENCODERS[base.family]:
        getattr(base.pipe, name).save_pretrained(tmp_path / name)
        reloaded = type(getattr(base.pipe, name)).from_pretrained(tmp_path / name)
        assert reloaded.config.eos_token_id == END_OF_TEXT  # other tools loading it pool at end-of-text too
