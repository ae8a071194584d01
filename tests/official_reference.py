"""A literal restatement of the official HRSAM backbone forward, used only by tests.

It follows the official code's data flow step by step (gather with an appended
padding row, q/k/v computed for every padded slot, RoPE at absolute positions of the
padded grid, attention per window, scatter back, a sequential selective scan over the
cycle-repeated sequence) so that our optimised model can be checked against it.
Run it on a float64 copy of the model.
"""
import math

import torch
import torch.nn.functional as F


def make_indices(hw_shapes, batch, ws, shift):
    pre = (ws - shift) % ws
    total = sum(h * w for h, w in hw_shapes)
    base, start, padded = [], 0, []
    for h, w in hw_shapes:
        ph = math.ceil((pre + h) / ws) * ws
        pw = math.ceil((pre + w) / ws) * ws
        rows = torch.full((ph,), -10 ** 9, dtype=torch.long)
        cols = torch.full((pw,), -10 ** 9, dtype=torch.long)
        rows[pre:pre + h] = torch.arange(h)
        cols[pre:pre + w] = torch.arange(w)
        grid = rows[:, None] * w + cols[None, :] + start
        grid = grid.reshape(ph // ws, ws, pw // ws, ws).permute(0, 2, 1, 3).reshape(-1)
        base.append(grid)
        padded.append((ph, pw))
        start += h * w
    base = torch.cat(base)
    idx = (torch.arange(batch)[:, None] * total + base[None]).reshape(-1)
    idx[idx < 0] = batch * total
    return idx, padded


def rope_tables(freqs, padded, batch, ws, dtype):
    tables = []
    for ph, pw in padded:
        fh = torch.outer(torch.arange(ph, dtype=dtype) / 14 * 7.0, freqs.to(dtype)).repeat_interleave(2, -1)
        fw = torch.outer(torch.arange(pw, dtype=dtype) / 14 * 7.0, freqs.to(dtype)).repeat_interleave(2, -1)
        grid = torch.cat([fh[:, None].expand(ph, pw, -1), fw[None].expand(ph, pw, -1)], dim=-1)
        grid = grid.reshape(ph // ws, ws, pw // ws, ws, -1).permute(0, 2, 1, 3, 4).reshape(ph * pw, -1)
        tables.append(grid)
    table = torch.cat(tables).repeat(batch, 1)[:, None, :]
    return table.cos(), table.sin()


def rotate_half(x):
    out = torch.empty_like(x)
    out[..., 0::2] = x[..., 1::2]
    out[..., 1::2] = -x[..., 0::2]
    return out


def attention_block(block, x, idx, rope, ws):
    attn = block.attn
    n = block.norm1(x)
    heads = attn.num_heads
    g = torch.cat([n, attn.padding], dim=0)[idx]
    q, k, v = attn.qkv(g).reshape(-1, 3, heads, n.shape[1] // heads).unbind(1)
    cos, sin = rope
    q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    s = ws * ws
    q, k, v = (t.reshape(-1, s, heads, t.shape[-1]).transpose(1, 2) for t in (q, k, v))
    scores = (q * attn.scale) @ k.transpose(-1, -2)
    o = (scores.softmax(-1) @ v).transpose(1, 2).reshape(-1, n.shape[1])
    o = attn.proj(o)
    full = o.new_zeros(x.shape[0] + 1, x.shape[1])
    full[idx] = o
    x = x + full[:-1]
    return x + block.mlp(block.norm2(x))


def sequential_scan(u, dt, a, b, c, d, bias, cycles):
    """u, dt (B, L, C); a (C, N); b, c (B, L, N) -> (B, cycles, L, C); one step at a time."""
    u, dt, b, c = (t.repeat(1, cycles, 1) for t in (u, dt, b, c))
    dt = F.softplus(dt + bias)
    h = u.new_zeros(u.shape[0], u.shape[2], a.shape[1])
    ys = []
    for t in range(u.shape[1]):
        h = torch.exp(dt[:, t, :, None] * a) * h + (dt[:, t] * u[:, t])[..., None] * b[:, t, None, :]
        ys.append((h * c[:, t, None, :]).sum(-1) + d * u[:, t])
    y = torch.stack(ys, dim=1)
    return y.reshape(u.shape[0], cycles, -1, u.shape[2])


def ssm_block(ssm, x, batch, split=None):
    dim, n = x.shape[1], ssm.state_dim
    short = x
    u, z = ssm.in_proj(ssm.in_norm(x)).chunk(2, dim=-1)
    dt, b, c = ssm.ssm_proj(u).split([dim, n, n], dim=-1)
    a = -ssm.As_log.exp()
    parts = split or [x.shape[0] // batch]
    ys, start = [], 0
    for size in parts:
        sl = slice(start, start + size)
        y = sequential_scan(
            u.reshape(batch, -1, dim)[:, sl], dt.reshape(batch, -1, dim)[:, sl], a,
            b.reshape(batch, -1, n)[:, sl], c.reshape(batch, -1, n)[:, sl], ssm.Ds, ssm.ssm_proj_bias,
            ssm.extend_ratio,
        )
        ys.append((y * ssm.gamma[..., 0].T[None, :, None, :]).sum(1))
        start += size
    y = torch.cat(ys, dim=1).reshape(-1, dim)
    return short + ssm.out_proj(z * ssm.out_norm(y))


def backbone_forward(bb, x):
    """The official HRSAMViT / HRSAMPlusPlusViT forward, on our module's parameters."""
    batch, _, h, w = x.shape
    ws = bb.window_size
    grid = bb.pos_embed[:, 1:].reshape(1, bb.pos_grid, bb.pos_grid, -1).permute(0, 3, 1, 2)
    tokens, shapes = [], []
    for size in [(h, w)] + [(s, s) for s in bb.downsample_sizes]:
        xi = x if size == (h, w) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        t = F.conv2d(xi, bb.patch_embed.proj.weight, bb.patch_embed.proj.bias, stride=bb.patch_size)
        pos = F.interpolate(grid, size=t.shape[-2:], mode="bilinear", align_corners=False)
        tokens.append((t + pos).flatten(2).transpose(1, 2))
        shapes.append(tuple(t.shape[-2:]))
    x = torch.cat(tokens, dim=1).reshape(-1, tokens[0].shape[-1])
    args = []
    for shift in (0, ws // 2):
        idx, padded = make_indices(shapes, batch, ws, shift)
        args.append((idx, rope_tables(bb.rope.freqs, padded, batch, ws, x.dtype)))
    split = [a * b for a, b in shapes]
    feats = []
    for i, block in enumerate(bb.blocks):
        k = bb.out_indices.index(i) if i in bb.out_indices else None
        if k is not None:
            if bb.multi_scale:
                x = ssm_block(bb.ss_mamba_blocks[k], x, batch, split)
            else:
                x = ssm_block(bb.mamba_blocks[k], x, batch)
        idx, rope = args[i % 2]
        x = attention_block(block, x, idx, rope, ws)
        if k is not None:
            h0, w0 = shapes[0]
            if bb.multi_scale:
                x = ssm_block(bb.ms_mamba_blocks[k], x, batch)
                parts = x.reshape(batch, -1, x.shape[-1]).split(split, dim=1)
                maps = [parts[0].reshape(batch, h0, w0, -1)]
                for part, (hh, ww) in zip(parts[1:], shapes[1:]):
                    m = part.reshape(batch, hh, ww, -1).permute(0, 3, 1, 2)
                    m = F.interpolate(m, size=(h0, w0), mode="bilinear", align_corners=False)
                    maps.append(m.permute(0, 2, 3, 1))
                f = bb.multi_scale_fusion[k][0](torch.cat(maps, dim=0))
                f = torch.cat(f.split(batch, dim=0), dim=-1)
            else:
                f = x.reshape(batch, h0, w0, -1)
            feats.append(f)
    out = 0
    for lateral, f in zip(bb.lateral_convs, feats):
        out = out + lateral[1](lateral[0](f)).permute(0, 3, 1, 2)
    out = bb.out_conv[0](out)
    return F.layer_norm(out.permute(0, 2, 3, 1), (out.shape[1],), bb.out_conv[2].weight,
                        bb.out_conv[2].bias, eps=1e-5).permute(0, 3, 1, 2)


# ------------------------------------------------------------------------------ mask decoder
def _attention(attn, q, k, v):
    """SAM's decoder Attention: project, split heads, softmax(q k^T / sqrt(d)) v, merge, project."""
    def heads(x):
        b, n, c = x.shape
        return x.reshape(b, n, attn.num_heads, c // attn.num_heads).transpose(1, 2)

    q, k, v = heads(attn.q_proj(q)), heads(attn.k_proj(k)), heads(attn.v_proj(v))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return attn.out_proj((weights @ v).transpose(1, 2).flatten(2))


def decode_head_forward(head, image_embed, image_pe, sparse, dense):
    """SAM's MaskDecoder.predict_masks, step by step: all mask tokens, (B, 4, 4h, 4w) and (B, 4)."""
    b = sparse.shape[0]
    tokens = torch.cat([head.iou_token.weight, head.mask_tokens.weight])[None].expand(b, -1, -1)
    tokens = torch.cat([tokens, sparse], dim=1)
    src = image_embed.expand(b, -1, -1, -1) + dense
    _, c, h, w = src.shape
    keys = src.flatten(2).permute(0, 2, 1)
    key_pe = image_pe.expand(b, -1, -1, -1).flatten(2).permute(0, 2, 1)
    queries = tokens
    for i, layer in enumerate(head.transformer.layers):
        if i == 0:
            queries = _attention(layer.self_attn, queries, queries, queries)
        else:
            q = queries + tokens
            queries = queries + _attention(layer.self_attn, q, q, queries)
        queries = layer.norm1(queries)
        q, k = queries + tokens, keys + key_pe
        queries = layer.norm2(queries + _attention(layer.cross_attn_token_to_image, q, k, keys))
        queries = layer.norm3(queries + layer.mlp(queries))
        q, k = queries + tokens, keys + key_pe
        keys = layer.norm4(keys + _attention(layer.cross_attn_image_to_token, k, q, queries))
    final = head.transformer
    q, k = queries + tokens, keys + key_pe
    queries = final.norm_final_attn(queries + _attention(final.final_attn_token_to_image, q, k, keys))
    upscaled = head.output_upscaling(keys.transpose(1, 2).reshape(b, c, h, w))
    hyper = torch.stack([mlp(queries[:, 1 + i]) for i, mlp in enumerate(head.output_hypernetworks_mlps)], 1)
    masks = (hyper @ upscaled.flatten(2)).reshape(b, -1, 4 * h, 4 * w)
    return masks, head.iou_prediction_head(queries[:, 0])
