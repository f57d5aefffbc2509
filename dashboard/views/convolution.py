"""Convolution page: one real first-layer kernel sliding over the image, one output pixel at a time
(the input patch, the kernel, their products and the sum that becomes the output pixel)."""

from __future__ import annotations

import streamlit as st

from dashboard.glossary import explain, layer_types_help
from dashboard.present import (Panel, current_lecture_step, held_out_image, keep_choices, present_on, slide,
                               slide_figure, slide_text)
from dashboard.state import sidebar, url_int
from dashboard.widgets import pick_image
from cnnviz.figures.convolution import conv_products_html, conv_window_pictures, geometry_words, step_equation
from cnnviz.inspect.architecture import layer_type
from cnnviz.inspect.convolution import ConvOutput, conv_output
from cnnviz.models.base import CNN

FRAME_S = 0.6  # seconds per frame while playing
ss = st.session_state
# The position lives in ``cv_at`` (a plain key). The slider (``cv_pos``) shows it only while paused;
# while playing a progress bar does: a slider moved by the server each frame can lag behind in the
# browser and send an old position back with the next click.


def _toggle_play(n: int) -> None:
    """Play/Pause. Play from the last position starts again at the first; the first frame after
    Play shows the position as it is, the next ones move on."""
    playing = not ss.get("cv_playing", False)
    ss["cv_playing"] = playing
    if playing:
        ss["cv_hold"] = True
        if ss.get("cv_at", 0) >= n - 1:
            ss["cv_at"] = 0


def _moved() -> None:
    ss["cv_at"] = ss["cv_pos"]


def _geometry(out: ConvOutput, arch: str) -> str:
    """What stride and padding mean for this layer, with its numbers."""
    (kh, kw), (sy, sx), (h, w), (oh, ow) = out.kernel_size, out.stride, out.image_size, out.out_size
    t, b, l, r = out.padding
    stride = (f"**stride {sy}**: the window moves {sy} pixel{'s' * (sy > 1)} between neighbouring output pixels"
              if sy == sx else f"**stride {sy} x {sx}** (rows x columns)")
    if sy > 1:
        stride += f", so the output is about 1/{sy} of the input's side"
    if not any(out.padding):
        pad = "**no padding**: the window stays inside the image, so the output is smaller than the input"
    elif len({t, b, l, r}) == 1:
        pad = (f"**padding {t}**: {t} row{'s' * (t > 1)} and column{'s' * (t > 1)} of zeros (grey) around "
               "the image, so the window can centre on the edge pixels too")
    else:
        pad = (f"**padding** top {t}, bottom {b}, left {l}, right {r} (grey): zeros where the window "
               "would leave the image")
    if any(out.pre_padding):
        sides = [f"{v} at the {side}" for v, side in zip(out.pre_padding, ("top", "bottom", "left", "right")) if v]
        keeps = f", so the {kh} x {kw} kernel keeps the image's size" if (oh, ow) == (h, w) else ""
        pad += f" ({' and '.join(sides)}: added by `{arch}` itself just before the layer{keeps})"
    if out.padding_mode != "zeros" and any(a - p for a, p in zip(out.padding, out.pre_padding)):
        pad += f"; this layer pads by `{out.padding_mode}`, not with zeros"
    formula = (f"output rows = ({h} + {t + b} - {out.span[0]}) // {sy} + 1 = {oh}, "
               f"columns = ({w} + {l + r} - {out.span[1]}) // {sx} + 1 = {ow}")
    return (f"This layer (`{out.layer}`): {out.out_channels} kernels of {out.in_channels} x {kh} x {kw}; "
            f"{stride}; {pad}. {formula}.")


def _after(model: CNN, layer: str) -> list[tuple[str, str]]:
    """``(layer type, name)`` of the layers that process the convolution's output before the next
    convolution or pool."""
    names = model.layer_names()
    follow = []
    for n in names[names.index(layer) + 1:] if layer in names else []:
        kind = layer_type(model.get_submodule(n))
        if "Conv" in kind or "Pool" in kind or kind == "Linear":
            break
        follow.append((kind, n))
    return follow


def present_convolution(ctx) -> None:
    """Present mode: the window on the padded input and the output map filling in, as a slide
    with Play (the URL's kernel and position; no widgets)."""
    step = current_lecture_step()
    model, meta = ctx.ckpt.model, ctx.ckpt.meta
    ch = url_int("ch", 0, model.first_conv.out_channels - 1, 0)
    st.query_params["ch"] = str(ch)
    keep_choices("cv_step")
    step_by = int(ss.get("cv_step", 1))
    with slide(step.title if step is not None else "The convolution, step by step") as tools:
        picked = held_out_image(ctx)
        if picked is None:
            slide_text("No image to show: this page needs the dataset (or the checkpoint's demo gallery).")
            return
        try:
            out = conv_output(model, picked[0], meta.normalization, ch)
        except (ValueError, RuntimeError, TypeError) as e:
            slide_text(f"Cannot show this model's first convolution: {e}")
            return
        n = out.num_positions
        if "cv_play" not in ss:  # a fresh visit: the URL's position, paused
            ss["cv_playing"] = False
            ss.pop("cv_at", None)
        at = ss.get("cv_at")
        ss["cv_at"] = min(int(at), n - 1) if at is not None else url_int("pos", 0, n - 1, 0)
        playing = bool(ss.get("cv_playing", False))
        tools.button("Pause" if playing else "Play", key="cv_play", on_click=_toggle_play, args=(n,),
                     icon=":material/pause:" if playing else ":material/play_arrow:")

        @st.fragment(run_every=FRAME_S if playing else None)
        def frames() -> None:
            """The window and the output at the position: reruns on its own every frame while playing."""
            if ss.get("cv_playing") and not ss.pop("cv_hold", False):
                if ss["cv_at"] >= n - 1:
                    ss["cv_playing"] = False
                    st.rerun(scope="app")
                ss["cv_at"] = min(int(ss["cv_at"]) + step_by, n - 1)
            pos = int(ss["cv_at"])
            st.query_params["pos"] = str(pos)
            s = out.step(pos)
            window, filled = conv_window_pictures(out, s)
            (oh, ow), (kh, kw) = out.out_size, out.kernel_size
            slide_text(f"Output pixel (row {s.row}, column {s.col}): {step_equation(s)}")
            slide_figure([Panel(window, f"input, {geometry_words(out)}: the {kh} x {kw} window in red"),
                          Panel(filled, f"kernel {out.channel}'s {oh} x {ow} output, filled up to here")])

        frames()


ctx = sidebar()
if ctx is not None and present_on():
    present_convolution(ctx)
else:
    st.title("The convolution, step by step")
if ctx is not None and not present_on():
    model, meta = ctx.ckpt.model, ctx.ckpt.meta
    conv = model.first_conv
    st.caption("One kernel of the first layer slides over the (normalised) image. At each position it "
               "multiplies the pixels under it by its weights, one product per input channel and tap, and "
               "adds them all up with the bias: that sum is one pixel of the output map. Drag the position "
               "or press Play to watch the map fill in.", help=explain("kernel", "normalised", "bias"))
    if not model.first_conv_learned:
        st.info(f"`{meta.arch}` does not learn its first convolution: its kernels are fixed before training "
                "(whitening filters, computed once from the training images to even out their colours and "
                "contrasts). The arithmetic is the same.")
    top_left, top_right = st.columns([3, 2])
    with top_left:
        picked = pick_image(ctx, "cv")
    n_k = conv.out_channels
    if "cv_play" not in ss:  # a fresh visit (widget state goes with the page): the URL's position, paused
        ss["cv_playing"] = False
        ss.pop("cv_at", None)
    if "cv_ch" not in ss or not 0 <= ss["cv_ch"] < n_k:  # first visit, or a model with fewer kernels
        ss["cv_ch"] = url_int("ch", 0, n_k - 1, 0)
    ch = top_right.number_input("Kernel (output channel)", 0, n_k - 1, key="cv_ch",
                                help=f"One of the layer's {n_k} kernels; the Filters page shows them all.\n\n"
                                     + explain("kernel", "channel"))
    st.query_params["ch"] = str(ch)
    step_by = top_right.number_input("Step per frame (positions)", 1, 4096, 1, key="cv_step",
                                     help="How many output positions Play moves per frame; one output row "
                                          "moves the window down by the stride.")
    if picked is None:
        st.query_params.pop("pos", None)
    else:
        image, caption, _ = picked
        try:
            out = conv_output(model, image, meta.normalization, int(ch))
        except (ValueError, RuntimeError, TypeError) as e:
            st.error(f"Cannot show this model's first convolution: {e}")
            st.stop()
        n = out.num_positions
        st.caption(_geometry(out, meta.arch), help=explain("kernel", "stride", "padding"))
        follow = _after(model, out.layer)
        if follow:
            st.caption("Shown here: the raw convolution output. The model then applies "
                       + ", ".join(f"{kind} (`{n}`)" for kind, n in follow)
                       + " to it (the Feature maps page shows those layers).",
                       help=layer_types_help([kind for kind, _ in follow]))
        at = ss.get("cv_at")
        ss["cv_at"] = min(int(at), n - 1) if at is not None else url_int("pos", 0, n - 1, 0)
        playing = bool(ss.get("cv_playing", False))
        top_right.button("Pause" if playing else "Play", key="cv_play", on_click=_toggle_play, args=(n,),
                         icon=":material/pause:" if playing else ":material/play_arrow:",
                         help=f"Move {step_by} position(s) every {FRAME_S:g} s until the last one.")
        top_right.image(image, caption=caption, width=160)

        @st.fragment(run_every=FRAME_S if playing else None)
        def stepper() -> None:
            """The position and the figures: reruns on its own every frame while playing."""
            if ss.get("cv_playing"):
                if not ss.pop("cv_hold", False):
                    if ss["cv_at"] >= n - 1:  # the last frame has been shown: stop the timer
                        ss["cv_playing"] = False
                        st.rerun(scope="app")
                    ss["cv_at"] = min(int(ss["cv_at"]) + int(step_by), n - 1)
                pos = int(ss["cv_at"])
                st.progress(pos / max(n - 1, 1), text=f"Output position {pos} of {n - 1} (playing)")
            elif n > 1:
                ss["cv_pos"] = int(ss["cv_at"])
                pos = st.slider("Output position (row-major)", 0, n - 1, key="cv_pos", on_change=_moved,
                                help=explain("row-major") + f"\n\nOutput pixel number: row = position // "
                                     f"{out.out_size[1]} (whole part of the division), column = position % "
                                     f"{out.out_size[1]} (the remainder).")
            else:
                pos = 0
            st.query_params["pos"] = str(pos)
            s = out.step(int(pos))
            st.markdown(f"#### Output pixel (row {s.row}, column {s.col}): {step_equation(s)}")
            (hp, wp), (oh, ow), (sh, sw) = out.padded.shape[1:], out.out_size, out.span
            window, filled = conv_window_pictures(out, s)
            left, right = st.columns(2)
            left.image(window, width="content",
                       caption=f"Input {out.image_size[0]} x {out.image_size[1]}, padded to {hp} x {wp}: "
                               f"{geometry_words(out)}; the window ({sh} x {sw}, red) and the next one (orange).")
            right.image(filled, width="content",
                        caption=f"Output map {oh} x {ow} (kernel {out.channel}), filled up to pixel ({s.row}, "
                                f"{s.col}) (black box): red positive, blue negative, white 0, over "
                                f"±{float(abs(out.output).max()):.3g}.")
            st.html(conv_products_html(out, s))
            st.caption("Per input channel: the normalised pixels under the kernel, the kernel's weights and their "
                       "products (red positive, blue negative; hover a cell for its value); all products, plus "
                       "the bias, sum to the output pixel.")

        stepper()
