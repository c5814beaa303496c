"""The tiny demo models are real pipelines: a real BPE tokenizer, seeded random weights, both families."""

import torch

from pipeline.faces import CLASS_WORD, TRIGGER
from pipeline.styles import load_styles, resolve_style
from pipeline.tiny import TEXT_VOCAB_SIZE, build_tiny_pipeline, tiny_tokenizer
from privacy.teams.team_look import OUTFITS


def test_tiny_tokenizer_is_a_real_clip_tokenizer_not_the_dummy():
    tok = tiny_tokenizer()
    assert len(tok) > 256  # transformers v5's dummy fallback has 3 tokens
    assert len(tok) <= TEXT_VOCAB_SIZE
    assert tok.model_max_length == 77
    ids = tok("a photo of ohwx person").input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.unk_token_id not in ids[1:-1]


def test_trigger_and_class_word_are_single_tokens():
    tok = tiny_tokenizer()
    assert tok.tokenize(TRIGGER) == [TRIGGER + "</w>"]
    assert tok.tokenize(CLASS_WORD) == [CLASS_WORD + "</w>"]


def test_every_style_prompt_tokenizes_into_whole_words_within_77_tokens():
    tok = tiny_tokenizer()
    styles = load_styles()
    refs = [ref for s in styles.values() for ref in (s.id, *(f"{s.id}:{b.id}" for b in s.backgrounds))]
    refs += [f"{ref}@{outfit}" for ref in refs for outfit in OUTFITS]  # each in every outfit a card offers
    for style in (resolve_style(styles, ref) for ref in refs):  # background variants and outfits included
        for text in (style.prompt(f"{TRIGGER} {CLASS_WORD}"), style.negative_prompt()):
            pieces = tok.tokenize(text)
            assert len(pieces) + 2 <= 77, style.id  # + start and end tokens
            assert all(p.endswith("</w>") for p in pieces), (style.id, [p for p in pieces if not p.endswith("</w>")])


def test_unknown_words_still_tokenize_byte_by_byte():
    tok = tiny_tokenizer()
    ids = tok("zyzzyva").input_ids
    assert tok.unk_token_id not in ids[1:-1] and len(ids) > 3


def test_tiny_weights_are_reproducible_per_seed():
    for family in ("sd15", "sdxl"):
        a, b, c = (build_tiny_pipeline(family, seed=s).unet for s in (0, 0, 1))
        wa, wb, wc = (next(iter(m.parameters())) for m in (a, b, c))
        assert torch.equal(wa, wb)
        assert not torch.equal(wa, wc)
