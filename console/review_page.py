"""Page Review: one blind item at a time, answered with the keyboard."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from console.html import e, section
from console.review_queue import Item

KEYS_JS = """
const f = document.getElementById('rate'), skip = document.getElementById('skip');
const pick = (name, value) => { f.querySelector(`input[name=${name}][value=${value}]`).checked = true; };
const keys = {'1': ['left_relevant', 'yes'], '2': ['left_relevant', 'no'], '3': ['right_relevant', 'yes'],
              '4': ['right_relevant', 'no'], 'y': ['same', 'yes'], 'n': ['same', 'no']};
document.addEventListener('keydown', (ev) => {
  if (!f || ev.target.type === 'text' || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const k = ev.key.toLowerCase();
  if (keys[k]) { pick(...keys[k]); ev.preventDefault(); }
  else if (k === 'enter') { ev.preventDefault(); f.requestSubmit(); }
  else if (k === 's') { ev.preventDefault(); skip.submit(); }
});
"""


def _radio(name: str, question: str, yes_key: str, no_key: str) -> str:
    return (f"<fieldset><legend>{e(question)}</legend>"
            f"<label><input type='radio' name='{name}' value='yes' required> yes <kbd>{yes_key}</kbd></label> "
            f"<label><input type='radio' name='{name}' value='no'> no <kbd>{no_key}</kbd></label></fieldset>")


def who_form(version: str) -> str:
    return section("Who is reviewing?", (
        "<form method='post' action='/review/reviewer' id='who'>"
        f"<input type='hidden' name='version' value='{e(version)}'>"
        "<label>reviewer id <input type='text' name='reviewer' id='reviewer' required maxlength='64' autofocus></label> "
        "<button>start</button></form><p class='muted'>Ratings are stored with this id, so agreement between "
        "reviewers can be measured.</p>"))


def versions_nav(versions: list[str], version: str) -> str:
    links = " ".join(f"<b>{e(v)}</b>" if v == version else f"<a href='/review?model={quote(v)}'>{e(v)}</a>"
                     for v in reversed(versions[-12:]))
    return f"<p>model under review: {links}</p>"


def render(version: str, reviewer: str, item: Item | None, done: int, total: int) -> str:
    progress = f"<p class='muted'>reviewer <b>{e(reviewer)}</b>: {done} of {total} items rated</p>"
    if item is None:
        return section(f"Review {version}", progress + "<p id='empty'>Nothing left in this queue: every item is rated "
                       "or skipped. The Models page shows the numbers.</p>")
    image = f"/review/image/{quote(version)}/{item.item_id}"
    hidden = (f"<input type='hidden' name='version' value='{e(version)}'>"
              f"<input type='hidden' name='item_id' value='{e(item.item_id)}'>")
    body = (progress + f"<p>request: <b id='prompt'>“{e(item.prompt)}”</b></p><div class='pair'>"
            f"<figure><img src='{image}/original.png' alt='original photo'><figcaption>original</figcaption></figure>"
            f"<figure><img src='{image}/left.png' alt='left result'><figcaption>left</figcaption></figure>"
            f"<figure><img src='{image}/right.png' alt='right result'><figcaption>right</figcaption></figure></div>"
            "<form method='post' action='/review' id='rate'>" + hidden
            + _radio("left_relevant", "Is the left result relevant to the request?", "1", "2")
            + _radio("right_relevant", "Is the right result relevant to the request?", "3", "4")
            + _radio("same", "Do the two results look like the same edit?", "Y", "N")
            + "<button>submit <kbd>Enter</kbd></button></form>"
            "<form method='post' action='/review/skip' id='skip'>" + hidden
            + "<button>skip <kbd>S</kbd></button></form>"
            "<p class='muted'>One render is the teacher's, the other the student's; sides are drawn at random.</p>")
    return section(f"Review {version}", body)


def parse_answer(form: dict[str, Any]) -> tuple[bool, bool, bool]:
    """(left relevant, right relevant, same) from the submitted form; ValueError names a missing answer."""
    out = []
    for name in ("left_relevant", "right_relevant", "same"):
        value = form.get(name)
        if value not in ("yes", "no"):
            msg = f"answer every question before submitting ({name} is missing); keys 1-4, Y/N, then Enter"
            raise ValueError(msg)
        out.append(value == "yes")
    return out[0], out[1], out[2]
