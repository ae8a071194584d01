"""SAM's two-way transformer mask decoder (the official HRSAM `decode_head`)."""
import torch
import torch.nn.functional as F
from torch import nn

from .prompt_encoder import LayerNorm2d


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections and optional width reduction.

    The decoder's cross attentions pair a few prompt tokens (T) with every image token (N). While
    heads x T is below the projected width, `tokens_to_image` and `image_to_tokens` fold the
    projections of the N-token side into the T-token side: the same attention, with half the
    N-sized matmuls and no per-head copies of N-token tensors (the decoder's cost on a CPU)."""

    def __init__(self, dim, num_heads, downsample_rate=1):
        super().__init__()
        inner = dim // downsample_rate
        if inner % num_heads:
            raise ValueError(f"{num_heads} heads do not divide the inner width {inner}")
        self.num_heads = num_heads
        self.head_dim = inner // num_heads
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(dim, inner)
        self.v_proj = nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def _heads(self, x):
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q, k, v):
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).flatten(2))

    def _folds(self, tokens):
        return self.num_heads * tokens <= self.q_proj.out_features

    def _per_head(self, weight):
        """(inner, dim) projection weight -> (heads, head_dim, dim)."""
        return weight.reshape(self.num_heads, -1, weight.shape[-1])

    def tokens_to_image(self, q, k, v):
        """forward(q, k, v) for few queries q (B, T, C) over image keys/values k, v (B, N, C)."""
        b, t, _ = q.shape
        if not self._folds(t):
            return self.forward(q, k, v)
        heads, head_dim = self.num_heads, self.head_dim
        qh = self.q_proj(q).reshape(b, t, heads, head_dim) * head_dim**-0.5
        # q.(W k + b) = (W^T q).k + q.b; the q.b term is constant over keys, so softmax drops it
        q_in = torch.einsum("bthj,hjc->bhtc", qh, self._per_head(self.k_proj.weight)).flatten(1, 2)
        attn = torch.softmax(q_in @ k.transpose(1, 2), dim=-1)  # (B, H*T, N)
        # sum_n a_n (W v_n + b) = W (sum_n a_n v_n) + b, as the weights sum to one
        mixed = (attn @ v).reshape(b, heads, t, -1)
        out = torch.einsum("bhtc,hjc->bthj", mixed, self._per_head(self.v_proj.weight))
        out = out + self.v_proj.bias.reshape(heads, head_dim)
        return self.out_proj(out.flatten(2))

    def image_to_tokens(self, q, k, v, residual):
        """residual + forward(q, k, v) for image queries q (B, N, C) over few keys/values k, v (B, T, C)."""
        b, t, _ = k.shape
        if not self._folds(t):
            return residual + self.forward(q, k, v)
        heads, head_dim = self.num_heads, self.head_dim
        kh = self.k_proj(k).reshape(b, t, heads, head_dim) * head_dim**-0.5
        # (W q + b).k = q.(W^T k) + b.k: the image queries meet the keys in the input width
        k_in = torch.einsum("bthj,hjc->bcht", kh, self._per_head(self.q_proj.weight)).flatten(2)
        k_bias = torch.einsum("bthj,hj->bht", kh, self.q_proj.bias.reshape(heads, head_dim)).flatten(1)
        scores = torch.baddbmm(k_bias[:, None], q, k_in)  # (B, N, H*T)
        attn = softmax_short_rows(scores.reshape(b, -1, heads, t)).flatten(2)
        # out_proj(sum_t a_t v_t) = sum_t a_t (W_out,h v_t): project the values first; each head's
        # weights sum to one, so a 1/H share of the output bias rides on every value row
        vh = self.v_proj(v).reshape(b, t, heads, head_dim)
        w_out = self.out_proj.weight.reshape(-1, heads, head_dim)
        values = torch.einsum("bthj,chj->bhtc", vh, w_out) + self.out_proj.bias / heads
        return torch.baddbmm(residual, attn, values.flatten(1, 2))  # (B, N, C), one pass


def softmax_short_rows(x):
    """Softmax over a short last axis: as composed ops, several times faster than torch.softmax's
    CPU kernel on rows of a few prompt tokens."""
    e = (x - x.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


class TwoLayerMLP(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden_dim)
        self.lin2 = nn.Linear(hidden_dim, dim)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.lin2(self.act(self.lin1(x)))


class MLP(nn.Module):
    def __init__(self, in_dim, hidden_dim, out_dim, num_layers):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class TwoWayBlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_dim, skip_first_layer_pe):
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = TwoLayerMLP(dim, mlp_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate=2)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries, keys, query_pe, key_pe):
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        k = keys + key_pe  # both cross attentions see the same keys
        queries = self.norm2(queries + self.cross_attn_token_to_image.tokens_to_image(queries + query_pe, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        keys = self.norm4(self.cross_attn_image_to_token.image_to_tokens(k, queries + query_pe, queries, keys))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, dim, depth, num_heads, mlp_dim):
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayBlock(dim, num_heads, mlp_dim, skip_first_layer_pe=(i == 0)) for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm_final_attn = nn.LayerNorm(dim)

    def forward(self, keys, key_pe, tokens):
        """keys (B, N, C) image tokens, contiguous; key_pe (1, N, C), shared by the batch; tokens
        (B, T, C) -> (queries (B, T, C), keys (B, N, C))."""
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        attn = self.final_attn_token_to_image.tokens_to_image(queries + tokens, keys + key_pe, keys)
        queries = self.norm_final_attn(queries + attn)
        return queries, keys


class MaskDecoder(nn.Module):
    def __init__(self, dim=256, depth=2, num_heads=8, mlp_dim=2048, num_multimask_outputs=3,
                 iou_head_depth=3, iou_head_hidden_dim=256):
        super().__init__()
        self.num_mask_tokens = num_multimask_outputs + 1
        self.transformer = TwoWayTransformer(dim, depth, num_heads, mlp_dim)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def forward(self, image_embed, image_pe, sparse, dense, multimask=True):
        """-> (mask logits (B, 4, 4h, 4w), predicted IoUs (B, 4)); token 0 alone (B, 1, ...) without multimask."""
        batch = sparse.shape[0]
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens[None].expand(batch, -1, -1), sparse], dim=1)
        h, w = image_embed.shape[-2:]
        # token-major and contiguous once, before the batch: every later pass over the N x C keys
        # streams memory, and a batch of prompts shares the one embedding and the one PE
        keys = image_embed.flatten(2).transpose(1, 2).contiguous()
        keys = keys + dense.flatten(2).transpose(1, 2)  # (B, N, C), or (B, 1, C) without a mask prompt
        if keys.shape[0] != batch:
            keys = keys.expand(batch, -1, -1).contiguous()
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous()
        hs, src = self.transformer(keys, key_pe, tokens)
        count = self.num_mask_tokens if multimask else 1
        hyper = torch.stack([self.output_hypernetworks_mlps[i](hs[:, 1 + i]) for i in range(count)], dim=1)
        masks = self._upscale_masks(src.reshape(batch, h, w, -1), hyper)
        return masks, self.iou_prediction_head(hs[:, 0])[:, :count]

    def _upscale_masks(self, src, hyper):
        """output_upscaling, then the hypernetwork product, in channels-last (B, h, w, C) order.

        A 2x2 stride-2 transposed conv is a matmul per token into its 2x2 block of outputs; kept in
        this order, the two upscalings, the norm and the mask product run as plain matmuls with no
        layout copies, and only the (B, K, 4h, 4w) masks are rearranged at the end."""
        up1, norm, _, up2, _ = self.output_upscaling
        b, h, w, _ = src.shape
        # conv-transpose weight (in, out, ky, kx) -> (in, ky * kx * out): outputs channel-last
        x = torch.addmm(up1.bias.repeat(4), src.reshape(-1, src.shape[-1]), up1.weight.permute(0, 2, 3, 1).flatten(1))
        x = x.reshape(b, h, w, 2, 2, -1)
        x = F.gelu(F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps))
        x = torch.addmm(up2.bias.repeat(4), x.reshape(-1, x.shape[-1]), up2.weight.permute(0, 2, 3, 1).flatten(1))
        x = F.gelu(x.reshape(b, h, w, 2, 2, 2, 2, -1))
        masks = (x.reshape(b, -1, x.shape[-1]) @ hyper.transpose(1, 2)).reshape(*x.shape[:-1], -1)
        # output row = 4y + 2 * ky1 + ky2, column = 4x + 2 * kx1 + kx2
        return masks.permute(0, 7, 1, 3, 5, 2, 4, 6).reshape(b, -1, 4 * h, 4 * w)
