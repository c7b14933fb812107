"""The float64 reference rotation shared by the API and autograd tests: rotary's own float32
cos/sin applied in float64 to (tokens, heads, head_dim) arrays, NumPy or torch alike (torch keeps
the graph, so autograd can differentiate it)."""


def rotate_reference(x, cos, sin, rotary_dim, layout):
    """Pair j of each head rotates by (cos[t, j], sin[t, j]); channels past rotary_dim pass through.
    cos/sin: (tokens, rotary_dim // 2), already float64 and of x's kind (NumPy or torch)."""
    cos, sin = cos[:, None, :], sin[:, None, :]
    d = rotary_dim
    out = x.clone() if hasattr(x, "clone") else x.copy()
    if layout == "interleaved":
        a, b = x[..., 0:d:2], x[..., 1:d:2]
        out[..., 0:d:2], out[..., 1:d:2] = a * cos - b * sin, b * cos + a * sin
    else:
        a, b = x[..., : d // 2], x[..., d // 2 : d]
        out[..., : d // 2], out[..., d // 2 : d] = a * cos - b * sin, b * cos + a * sin
    return out
