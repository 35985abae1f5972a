"""Small transformers configs of the architectures the transformers tests cover (seconds each), and
what each needs to run a forward pass."""

import torch

# model_type, its config (small), the Auto class that loads it
CONFIGS = {
    "llama": dict(model_type="llama", vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, max_position_embeddings=256,
                  rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 64},
                  architectures=["LlamaForCausalLM"]),
    "qwen2": dict(model_type="qwen2", vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, architectures=["Qwen2ForCausalLM"]),
    "mistral": dict(model_type="mistral", vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, architectures=["MistralForCausalLM"]),
    "gemma2": dict(model_type="gemma2", vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, head_dim=16, architectures=["Gemma2ForCausalLM"]),
    "gpt2": dict(model_type="gpt2", vocab_size=128, n_embd=64, n_layer=2, n_head=4, n_positions=64,
                 architectures=["GPT2LMHeadModel"]),
    "bert": dict(model_type="bert", vocab_size=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=128, max_position_embeddings=64, pad_token_id=3, architectures=["BertForMaskedLM"]),
    "t5": dict(model_type="t5", vocab_size=128, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
               architectures=["T5ForConditionalGeneration"]),
    "mixtral": dict(model_type="mixtral", vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
                    architectures=["MixtralForCausalLM"]),
    "vit": dict(model_type="vit", hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                image_size=32, patch_size=8, architectures=["ViTModel"]),
}
AUTO = {"llama": "AutoModelForCausalLM", "qwen2": "AutoModelForCausalLM", "mistral": "AutoModelForCausalLM",
        "gemma2": "AutoModelForCausalLM", "gpt2": "AutoModelForCausalLM", "bert": "AutoModelForMaskedLM",
        "t5": "AutoModelForSeq2SeqLM", "mixtral": "AutoModelForCausalLM", "vit": "AutoModel"}


def inputs(arch: str) -> dict:
    """A few inputs for a forward pass of ``arch``."""
    generator = torch.Generator().manual_seed(0)
    if arch == "vit":
        return {"pixel_values": torch.randn(2, 3, 32, 32, generator=generator)}
    ids = torch.randint(4, 128, (2, 7), generator=generator)
    return {"input_ids": ids, "decoder_input_ids": ids[:, :5]} if arch == "t5" else {"input_ids": ids}


def output(result) -> torch.Tensor:
    return result.logits if hasattr(result, "logits") else result.last_hidden_state
