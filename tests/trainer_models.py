"""Small torch modules with the parameter names of trainers' models, for recipe and DCP tests."""

from torch import nn


class _Attention(nn.Module):
    def __init__(self, dim, kv_dim):
        super().__init__()
        self.wq, self.wk = nn.Linear(dim, dim, bias=False), nn.Linear(dim, kv_dim, bias=False)
        self.wv, self.wo = nn.Linear(dim, kv_dim, bias=False), nn.Linear(dim, dim, bias=False)


class _FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.w1, self.w3 = nn.Linear(dim, hidden, bias=False), nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)


class _Block(nn.Module):
    def __init__(self, dim, hidden, kv_dim):
        super().__init__()
        self.attention, self.feed_forward = _Attention(dim, kv_dim), _FeedForward(dim, hidden)
        self.attention_norm, self.ffn_norm = nn.RMSNorm(dim), nn.RMSNorm(dim)


class TorchtitanLike(nn.Module):
    """torchtitan's Llama 3 parameter names (its legacy layout), at a test's size."""

    def __init__(self, dim=256, layers=3, hidden=512, vocab=1024, tied=False, kv_dim=None):
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleDict({str(i): _Block(dim, hidden, kv_dim or dim // 2) for i in range(layers)})
        self.norm, self.output = nn.RMSNorm(dim), nn.Linear(dim, vocab, bias=False)
        if tied:
            self.output.weight = self.tok_embeddings.weight
