"""The Search tab: words in any language the encoder's text model was fitted on (the demo's:
English, Spanish, Catalan, French) or a dropped image; the dataset's nearest posts with their
captions, through ``miro.retrieval``'s index.

Example::

    posts = search_posts(models.retriever, "lluna", None, k=8)
    posts[0]     # ("/abs/dataset/images/….jpg", "1. la lluna i l'estel (0.93)")
"""

from collections.abc import Callable

import gradio as gr

from miro.retrieval.query import shorten
from miro.retrieval.retriever import Retriever
from miro.webapp.messages import Upload, shown_in_page, uploaded_image
from miro.webapp.models import StudioModels

CAPTION_WIDTH = 90


def search_posts(
    retriever: Callable[[], Retriever], words: str, upload: Upload | None, k: int = 12
) -> list[tuple[str, str]]:
    """``(image path, "rank. caption (score)")`` of the ``k`` posts nearest to ``words``, or to
    the uploaded image when no words are typed; unknown words are left out with a warning."""
    if not (words or "").strip() and upload is None:
        raise gr.Error(
            "Type words (English, Spanish, Catalan or French) or drop an image to search.",
            print_exception=False,
        )
    with shown_in_page():
        if (words or "").strip():
            result = retriever().search_text(words.strip(), int(k))
        else:
            result = retriever().search_image(uploaded_image(upload), int(k))
    if result.unknown:
        gr.Warning(f"Left out the words the text model does not know: {', '.join(result.unknown)}.")
    return [
        (str(hit.image), f"{hit.rank}. {shorten(hit.caption, CAPTION_WIDTH)} ({hit.score:.2f})")
        for hit in result.hits
    ]


def search_tab(models: StudioModels, k: int) -> None:
    """The tab's layout and events, inside a ``gr.Blocks``; the reason alone when it is off."""
    if models.search is not None:
        gr.Markdown(models.search.reason, elem_id="search-unavailable")
        return
    with gr.Row():
        words = gr.Textbox(
            label="Words",
            placeholder="star, lluna, pájaro, échelle ...",
            scale=3,
            elem_id="search-words",
        )
        photo = gr.Image(sources=["upload"], type="filepath", label="Or an image", scale=1)
        count = gr.Slider(1, 48, value=k, step=1, label="Posts")
    start = gr.Button("Search", variant="primary")
    posts = gr.Gallery(label="Nearest posts", columns=6, elem_id="search-posts")

    def run(words, upload, count):
        return search_posts(models.retriever, words, upload, count)

    gr.on(
        [start.click, words.submit, photo.upload],
        run,
        inputs=[words, photo, count],
        outputs=posts,
        preprocess=False,
        api_name="search",
    )
