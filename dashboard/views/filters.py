"""Filters page: the first-layer kernels at lecture size, one enlarged, and their evolution."""

from __future__ import annotations

import streamlit as st

from dashboard.state import sidebar, url_int
from dashboard.widgets import unit_link
from cnnviz.checkpoints import load_snapshots, snapshots_path
from cnnviz.figures.filters import filter_channels_figure, filter_grid_figure, lecture_grid, png_bytes
from cnnviz.inspect.filters import first_layer_filters, first_layer_filters_from_state


@st.cache_resource(max_entries=4)
def _snapshots(path: str, mtime: float, _ckpt) -> dict:
    return load_snapshots(_ckpt)


def snapshots(ckpt) -> dict:
    """Weights saved during training, by epoch (empty when none were saved); cached by the
    snapshot file's path and modification time, so a file written later is picked up."""
    f = snapshots_path(ckpt.path) if ckpt.path is not None else None
    return _snapshots(str(f), f.stat().st_mtime if f is not None and f.is_file() else 0.0, ckpt)


ctx = sidebar()
st.title("First-layer filters")
if ctx is not None:
    model = ctx.ckpt.model
    conv = model.first_conv
    st.caption(f"The {conv.out_channels} kernels of the first convolution ({conv.in_channels}x"
               f"{conv.kernel_size[0]}x{conv.kernel_size[1]}, stride {conv.stride[0]}) drawn as colour "
               "images, as in figure 3 of the AlexNet paper.")
    if not model.first_conv_learned:
        st.info(f"`{ctx.ckpt.meta.arch}` does not train its first convolution: its kernels are fixed "
                "before training (e.g. whitening filters computed from the covariance of the "
                "training images' patches), so they show the data's statistics rather than learned "
                "features, and training snapshots show the same kernels at every epoch. Pick a model "
                "that trains its first layer to see learned kernels.")
    c1, c2, c3 = st.columns(3)
    norm = c1.radio("Normalisation", ["per_filter", "global"], horizontal=True, key="f_norm",
                    format_func=lambda s: {"per_filter": "each filter", "global": "all filters together"}[s])
    order_key = c2.radio("Order", ["index", "norm", "color", "structure"], horizontal=True, key="f_order",
                         format_func=lambda s: {"index": "as learned", "norm": "by norm",
                                                "color": "colour-specific first",
                                                "structure": "most structured first"}[s])
    snaps = snapshots(ctx.ckpt)
    state, when = None, "final"
    if snaps:
        epochs = list(snaps) + ["final"]
        when = c3.select_slider("Training epoch", options=epochs, value="final", key="f_epoch",
                                format_func=lambda e: "initial" if e == 0 else str(e),
                                help="Snapshots saved during training (0: the weights as initialised): "
                                     "watch the kernels form.")
        if when != "final":
            state = snaps[when]
    else:
        c3.caption("No epoch snapshots in this checkpoint (train with --snapshot-epochs to add them).")
    filters = (first_layer_filters(model, normalize=norm) if state is None
               else first_layer_filters_from_state(model, state, normalize=norm))
    order = None if order_key == "index" else filters.order_by(order_key)
    st.plotly_chart(filter_grid_figure(filters, order=order), key="f_grid")
    ks = filters.structure
    s1, s2 = st.columns([4, 1], vertical_alignment="center")
    s1.caption(f"Kernel structure: mean score {ks.mean:.2f} (0 = white noise, 1 = all energy in the "
               f"{ks.k} strongest spatial frequencies); {ks.structured} of {len(filters)} kernels are more "
               "structured than 99% of random kernels of this shape.")
    s2.download_button("Slide PNG", lambda: png_bytes(lecture_grid(filters, order)), key="f_png",
                       file_name=f"{ctx.name}_kernels{'' if when == 'final' else f'_epoch{when}'}.png",
                       mime="image/png", on_click="ignore", icon=":material/download:",
                       help="The kernel grid at least 1,200 px wide, sharp pixels, for a slide.")
    default = url_int("filter", 0, len(filters) - 1, 0)
    idx = st.number_input("Enlarge filter", 0, len(filters) - 1, default, key="f_idx",
                          help="Hover the grid to see each filter's number.")
    st.query_params["filter"] = str(idx)
    left, right = st.columns([1, 3])
    big = filters.images[idx].repeat(192 // filters.kernel_size[0], 0).repeat(192 // filters.kernel_size[1], 1)
    left.image(big, caption=f"filter {idx}", clamp=True)
    left.write(f"norm {filters.norms[idx]:.3f}, colourfulness {filters.colorfulness[idx]:.2f}, "
               f"structure {filters.structure.scores[idx]:.2f}")
    first = next(n for n, m in model.named_modules() if m is model.first_conv)
    unit_link(ctx, first, int(idx), left)
    right.plotly_chart(filter_channels_figure(filters, idx), key="f_channels")
