"""Small randomly initialised encoders with tokenizers trained on the spot: the backbones' code paths without
downloads. Test modules import from here, never from each other."""

from __future__ import annotations

from pathlib import Path


def bpe_tokenizer(dir_: Path, texts: list[str], special_tokens: list[str]):  # noqa: ANN201 - tokenizers.Tokenizer
    """A byte-level BPE tokenizer trained here on ``texts`` (no downloads), saved as ``dir_/tokenizer.json``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    dir_.mkdir(parents=True, exist_ok=True)
    tok.save(str(dir_ / "tokenizer.json"))
    return tok


def tiny_t5(dir_: Path, texts: list[str]) -> Path:
    """A randomly initialised small T5 encoder with a byte-level BPE tokenizer trained here (no downloads)."""
    import torch
    from transformers import T5Config, T5EncoderModel

    tok = bpe_tokenizer(dir_, texts, ["<pad>", "</s>", "<unk>"])
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=tok.get_vocab_size(), d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    T5EncoderModel(cfg).save_pretrained(dir_)
    return dir_


def tiny_mpnet(dir_: Path, texts: list[str], layers: int = 2) -> Path:
    """A randomly initialised small MPNet with a byte-level BPE tokenizer trained here (<s>, </s>, <pad>, <unk>)."""
    import torch
    from transformers import MPNetConfig, MPNetModel

    tok = bpe_tokenizer(dir_, texts, ["<s>", "<pad>", "</s>", "<unk>"])
    torch.manual_seed(0)
    cfg = MPNetConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, num_hidden_layers=layers, num_attention_heads=4,
                      intermediate_size=128, max_position_embeddings=256, pad_token_id=1, bos_token_id=0,
                      eos_token_id=2)
    MPNetModel(cfg, add_pooling_layer=False).save_pretrained(dir_)
    return dir_
