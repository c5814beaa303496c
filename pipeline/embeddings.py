"""The trigger token's own input embeddings (pivotal tuning): trained, swapped into the shared text encoders, exported.

Pivotal tuning (diffusers' examples/advanced_diffusion_training, `TokenEmbeddingsHandler`;
LoRA Ease's face preset) trains the trigger's embedding vectors in every text encoder
together with the UNet LoRA, so the prompt itself points at the person instead of
relying on a rare token's random prior meaning. The reference script adds new tokens
("<s0><s1>") to the tokenizers, resizes the embedding tables and trains the whole table
with the other rows restored after each step. Here the base pipeline is shared by
sessions, so the tables are never trained: a forward hook on each encoder's
token-embedding module replaces the output at the trigger's token id by this adapter's
vectors. Removing the hook restores the base exactly, and the same vectors load into
any pipeline as new tokens (`load_textual_inversion`), since an input embedding does
not depend on the id it sits at.

The trigger is ONE added token in every tokenizer (`add_trigger_token`, once at load),
as the reference adds its tokens: in CLIP's own BPE vocabulary "ohwx" is the ordinary
word token 47993 ("ohwx</w>", checked against openai/CLIP's bpe_simple_vocab_16e6), so
a hook keyed on vocabulary ids would also rewrite any other word whose pieces share
them, in every vocabulary a fine-tune may bring. An added token is matched as a whole
word before BPE runs and gets an id past the vocabulary, which no caption or prompt
word can produce; the table grows by one row for it where it has no spare row.

Vectors are initialised as the reference does: random normal scaled by the std of the
encoder's existing embedding table, and pulled back towards that spread after every step
while they train (`retract`, the reference's `retract_embeddings`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from transformers import AddedToken

from errors import ModelUnavailable
from pipeline.tiny import TRIGGER_WORD

# Text encoders of each family, under the names diffusers' pipelines give them, and the
# key each takes in the kohya / A1111 embedding file (the advanced script's `_emb` file).
ENCODERS = {"sd15": ("text_encoder",), "sd2": ("text_encoder",), "sdxl": ("text_encoder", "text_encoder_2")}
KOHYA_KEYS = {"sd15": {"text_encoder": "emb_params"}, "sd2": {"text_encoder": "emb_params"},
              "sdxl": {"text_encoder": "clip_l", "text_encoder_2": "clip_g"}}
_TOKENIZER = {"text_encoder": "tokenizer", "text_encoder_2": "tokenizer_2"}


def add_trigger_token(pipe, family: str) -> None:
    """Make the trigger ONE added token (id past the vocabulary) in every tokenizer of `pipe`, with a table row.

    Idempotent (a pipeline saved after loading already has it). `single_word`: "ohwx" inside
    another word ("bohwx") is left to BPE. The new row, where one is needed, is the table's
    mean; its value never shows, since the trigger only appears in prompts while an
    adapter's vectors are hooked in.
    """
    for name in ENCODERS[family]:
        tokenizer, encoder = getattr(pipe, _TOKENIZER[name]), getattr(pipe, name)
        tokenizer.add_tokens([AddedToken(TRIGGER_WORD, single_word=True)])
        ids = tokenizer(TRIGGER_WORD, add_special_tokens=False).input_ids
        if len(ids) != 1 or ids[0] < tokenizer.vocab_size:
            raise ModelUnavailable(f"The base model's {_TOKENIZER[name]} already uses the trigger word "
                                   f"{TRIGGER_WORD!r} inside its vocabulary, so it cannot be trained as a new "
                                   "token. Use a Stable Diffusion 1.5, 2.x or SDXL base with CLIP's own tokenizer.")
        pool_at_end_of_text(encoder, tokenizer.eos_token_id)
        table = encoder.get_input_embeddings()
        if ids[0] >= table.num_embeddings:
            rows, mean = table.num_embeddings, table.weight.detach().mean(0)
            encoder.resize_token_embeddings(ids[0] + 1, mean_resizing=False)
            with torch.no_grad():
                encoder.get_input_embeddings().weight[rows:] = mean


def pool_at_end_of_text(encoder, eos_token_id: int | None) -> None:
    """Make `encoder` pool (SDXL's `text_embeds`, any CLIP `pooler_output`) at the first end-of-text token.

    The real SD1.5, SD2 and SDXL text-encoder configs carry the legacy `eos_token_id: 2`, and
    with that value transformers' CLIP pools at `argmax(input_ids)` (the highest id, which was
    end-of-text, 49407, before any token was added). The trigger's added id (49408) is higher,
    so the pooled vector would be the trigger's and SDXL's global conditioning would drop every
    word after it (outfit, background, lighting). Setting the real end-of-text id (as
    transformers' configs do since its PR #24773) switches CLIP to "first position of that id",
    which is the same position for any prompt without an added token, so those stay bit-identical.
    The config is changed, not just our call sites, so `encode_prompt`, our trainer and a pipeline
    saved from this one all pool where other tools (which never see the added id) pool.
    """
    if eos_token_id is None:  # a tokenizer without an end-of-text token: nothing to point the pooling at
        return
    encoders = [m for m in encoder.modules() if hasattr(m, "eos_token_id") and hasattr(m, "config")]
    for module in [encoder, *encoders]:
        module.config.eos_token_id = eos_token_id
    for module in encoders:  # CLIPTextModel copies the config's value at construction: the forward reads this one
        module.eos_token_id = eos_token_id


def trigger_ids(pipe, encoder_name: str) -> list[int]:
    """The trigger's token id (one, an added token: `add_trigger_token`) in the tokenizer that feeds `encoder_name`."""
    tokenizer = getattr(pipe, _TOKENIZER[encoder_name])
    ids = list(tokenizer(TRIGGER_WORD, add_special_tokens=False).input_ids)
    if len(ids) != 1 or ids[0] < tokenizer.vocab_size:
        # A hook on vocabulary ids would rewrite ordinary words too: never run it on one.
        raise RuntimeError(f"{TRIGGER_WORD!r} is not an added token of {_TOKENIZER[encoder_name]}; "
                           "load the base through pipeline.models (wrap_pipeline adds it)")
    return ids


def initial_embeddings(pipe, family: str, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Fresh fp32 vectors per encoder, (n_trigger_tokens, hidden), random normal x the table's std."""
    out = {}
    for name in ENCODERS[family]:
        table = getattr(pipe, name).get_input_embeddings().weight
        n = len(trigger_ids(pipe, name))
        std = table.detach().float().std()
        out[name] = (torch.randn((n, table.shape[1]), generator=generator) * std.cpu()).to(table.device)
    return out


def table_stds(pipe, family: str) -> dict[str, torch.Tensor]:
    """The std of each encoder's whole token-embedding table (on its device): where `retract` pulls the trigger."""
    return {name: getattr(pipe, name).get_input_embeddings().weight.detach().float().std() for name in ENCODERS[family]}


@torch.no_grad()
def retract(embeddings: dict[str, torch.Tensor], stds: dict[str, torch.Tensor], power: float) -> None:
    """Rescale each encoder's trained vectors in place by (table std / their std) ** `power`.

    diffusers' advanced DreamBooth script does this after every optimizer step
    (`TokenEmbeddingsHandler.retract_embeddings`, power 0.1): a trigger vector whose scale drifts
    far from the table's ordinary words dominates the text encoder's attention and prompts lose
    their other words; each step takes back a tenth (in log scale) of the drift. Stays on the
    device: no host sync.
    """
    for name, vectors in embeddings.items():
        x = vectors.float()
        # torch's std reads a scalar back to the host on the way (aten::item); written out, it stays on the device.
        std = ((x - x.mean()).square().sum() / max(x.numel() - 1, 1)).sqrt()
        vectors.mul_((stds[name] / std).pow(power).to(vectors.dtype))


def _hook(ids: torch.Tensor, vectors: torch.Tensor):
    def replace(module, args, output):
        match = args[0].unsqueeze(-1) == ids  # (batch, length, n_trigger_tokens)
        # The matmul picks each position's vector (gradients flow to `vectors` when it trains).
        picked = match.to(vectors.dtype) @ vectors
        return torch.where(match.any(-1, keepdim=True), picked.to(output.dtype), output)
    return replace


@contextmanager
def trigger_embeddings_applied(base, embeddings: dict[str, torch.Tensor] | None) -> Iterator[None]:
    """Within the block, the trigger's tokens embed as `embeddings` in the base's text encoders (hooks, removed after).

    `embeddings` maps an encoder name to (n_trigger_tokens, hidden) vectors; trainable
    parameters stay trainable. Empty or None: nothing changes.
    """
    handles = []
    try:
        for name, vectors in (embeddings or {}).items():
            module = getattr(base.pipe, name).get_input_embeddings()
            ids = torch.tensor(trigger_ids(base.pipe, name), device=module.weight.device)
            if ids.numel() != vectors.shape[0]:
                raise ValueError(f"{name}: {vectors.shape[0]} trigger vectors for {ids.numel()} trigger tokens")
            if not vectors.requires_grad:
                vectors = vectors.to(module.weight.device, module.weight.dtype)
            handles.append(module.register_forward_hook(_hook(ids, vectors)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def export_tokens(n: int) -> list[str]:
    """Token names for the exported embeddings, as the advanced script names them: <s0>, <s1>, ..."""
    return [f"<s{i}>" for i in range(n)]
