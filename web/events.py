"""The one path from a trigger to a handler: who the caller is, what the handler changes, how errors read.

Every caller is a stranger, so every event of the page is wired by `Wiring.event`, which does three
things a handler cannot forget:

* **the caller first**: each state input is resolved before the handler runs by the resolver bound to
  it (`Wiring.guard`): the studio session to the `Owned` this browser's cookie proves (or None), the
  team admin's state to the team it opens, the operator's to the key it holds (both refuse otherwise).
  A handler never sees a state as sent. `unguarded_events` lists every event of a Blocks that reads a
  state without this step (`web.page.build_demo` refuses to build such a page);
* **outputs by name**: the event declares its outputs once, as components; the handler returns a mapping
  of the names it changes (each component's name on its view: `Page`, `TeamPage`, `OperatorPage`) to
  their new values, and every other output stays as it is;
* **errors as messages** (`shown`): a `UserError` says what to do next; anything else is logged as type
  and frames only (a message may carry what a person sent) and shown as a neutral apology.

Presets say how an event is exposed: `PUBLIC_*` ones are in the page's API under their `api_name` (what a
client of the API may call, each refusing strangers the same way), `PAGE_ONLY_*` ones only the page's own
script calls (Gradio's "private" API).
"""

from __future__ import annotations

import inspect
import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from functools import wraps
from typing import Any, Callable, Iterable

import gradio as gr
from gradio.blocks import Block, Blocks

from errors import UserError

log = logging.getLogger("app")

GENERIC_FAILURE = ("Something went wrong on our side. Nothing you sent was kept outside your encrypted session. "
                   "Please try again.")

# --- presets: how an event is exposed, and how it is answered ---------------------------------------------
# PUBLIC_*: in the page's API under the event's api_name. PAGE_ONLY_*: only the page's own script calls it.
# All but screening are answered at once, never queued behind another person (concurrency_limit=None).
PUBLIC_NO_SPINNER = dict(api_visibility="public", concurrency_limit=None, show_progress="hidden")
PAGE_ONLY_NO_SPINNER = dict(api_visibility="private", concurrency_limit=None, show_progress="hidden")
# Gradio's progress shown (where the event says, with show_progress_on): following a job, opening a session.
PUBLIC_WITH_PROGRESS = dict(api_visibility="public", concurrency_limit=None)
PAGE_ONLY_WITH_PROGRESS = dict(api_visibility="private", concurrency_limit=None)
# Screening a photo is CPU-bound: two at a time across the server, all such events together.
PUBLIC_SCREENING = dict(api_visibility="public", concurrency_limit=2, concurrency_id="screening")

GUARD_MARK = "resolved_inputs"  # set on every function `Wiring.event` makes: the input positions it resolves


@dataclass(frozen=True)
class Owned:
    """The studio session in a tab's state, with the browser that opened it.

    `started_here`: the session began with this page's own consent, not reopened with a return key. A team
    invite read by the page is joined on consent only then: the invite's notice was in view when the person
    ticked the statements. A session reopened in a tab that then reads an invite asks first (web.team_handlers).
    """

    session_id: str
    owner: str
    started_here: bool = False


def session_of(mine: Owned | None) -> str | None:
    """The session id of the caller's resolved session (web.events.Wiring), or None."""
    return mine.session_id if mine is not None else None


def _as_message(fn_name: str, exc: Exception) -> gr.Error:
    if isinstance(exc, UserError):
        return gr.Error(exc.message, title="Please check", print_exception=False)
    # Type and frames only: exception messages may carry paths or values a person sent.
    log.error("%s failed: %s\n%s", fn_name, type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    return gr.Error(GENERIC_FAILURE, title="Sorry", print_exception=False)


def shown(fn: Callable) -> Callable:
    """`fn` with its errors turned into messages for the page (see the module docstring)."""
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise _as_message(fn.__name__, exc) from None
    return wrapper


def shown_stream(fn: Callable) -> Callable:
    """`shown` for async generators (the page watching a job)."""
    @wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any):
        try:
            async for update in fn(*args, **kwargs):
                yield update
        except gr.Error:
            raise
        except Exception as exc:
            raise _as_message(fn.__name__, exc) from None
    return wrapper


def _read_as_sent(value: Any, request: Any) -> Any:
    return value


class Wiring:
    """Connects handlers to components: resolves the caller, maps outputs by name, shows errors (module docstring).

    `views`: the objects whose attributes are the page's components (their attribute names are the names
    handlers return).
    """

    def __init__(self, *views: object) -> None:
        self._names: dict[int, str] = {}
        self._resolvers: dict[int, Callable[[Any, gr.Request | None], Any]] = {}
        for view in views:
            self.add_view(view)

    def add_view(self, view: object) -> None:
        for name, value in vars(view).items():
            if isinstance(value, Block):
                self._names[value._id] = name

    def guard(self, state: gr.State, resolver: Callable[[Any, gr.Request | None], Any]) -> None:
        """Every event reading `state` hands its handler `resolver(state, request)` instead of the state as sent."""
        self._resolvers[state._id] = resolver

    def plain(self, state: gr.State) -> None:
        """`state` carries no credential (a name the page remembers): its events read it as sent, knowingly."""
        self._resolvers[state._id] = _read_as_sent

    def event(self, fn: Callable, *, inputs: Iterable[Block] = (), outputs: Iterable[Block] = (),
              **settings: Any) -> dict[str, Any]:
        """The keyword arguments of a listener that runs `fn` (`.click(**…)`, `.then(**…)`, `gr.on(triggers, **…)`)."""
        inputs, outputs = list(inputs), list(outputs)
        names = [self._name_of(component) for component in outputs]
        if len(set(names)) != len(names):
            raise ValueError(f"{fn.__name__}: two outputs share a name ({names}); they would be indistinguishable")
        guarded: dict[int, Callable] = {}
        for position, component in enumerate(inputs):
            if isinstance(component, gr.State):
                if component._id not in self._resolvers:
                    raise ValueError(f"{fn.__name__} reads a state with no resolver: call Wiring.guard (or .plain) "
                                     "for it first")
                guarded[position] = self._resolvers[component._id]
        if guarded:
            _check_request_follows_inputs(fn, len(inputs))
        return dict(fn=_wrapped(fn, names, guarded), inputs=inputs, outputs=outputs, **settings)

    def _name_of(self, component: Block) -> str:
        try:
            return self._names[component._id]
        except KeyError:
            raise ValueError(f"{component!r} is not a component of any view given to Wiring") from None


def _check_request_follows_inputs(fn: Callable, n_inputs: int) -> None:
    """A guarded handler takes the request (its caller is resolved from it) after its inputs (Gradio inserts the
    request at its parameter's place, so the inputs keep theirs)."""
    hints = gr.utils.get_type_hints(fn)
    parameters = list(inspect.signature(fn).parameters.values())
    places = [i for i, p in enumerate(parameters) if hints.get(p.name) in (gr.Request, gr.Request | None)]
    if not places or places[0] < n_inputs:
        raise TypeError(f"{fn.__name__} reads a state, so it must take `request: gr.Request` after its inputs")


def _outputs_of(changes: Any, names: list[str], fn_name: str) -> Any:
    """The handler's changes by name as Gradio's list of outputs, every output not named left as it is."""
    if not isinstance(changes, Mapping):
        raise TypeError(f"{fn_name} must return a mapping of the outputs it changes, by name")
    unknown = set(changes) - set(names)
    if unknown:
        raise KeyError(f"{fn_name} changed {sorted(unknown)}, which are not outputs of its event ({names})")
    values = [changes.get(name, gr.update()) for name in names]
    return values[0] if len(values) == 1 else values


def _wrapped(fn: Callable, names: list[str], guarded: dict[int, Callable]) -> Callable:
    def resolved(args: tuple) -> list:
        args = list(args)
        if guarded:
            request = next((a for a in args if isinstance(a, gr.Request)), None)
            for position, resolve in guarded.items():
                args[position] = resolve(args[position], request)
        return args

    if inspect.isasyncgenfunction(fn):
        @wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any):
            try:
                async for changes in fn(*resolved(args), **kwargs):
                    yield _outputs_of(changes, names, fn.__name__) if names else None
            except gr.Error:
                raise
            except Exception as exc:
                raise _as_message(fn.__name__, exc) from None
    else:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                changes = fn(*resolved(args), **kwargs)
                return _outputs_of(changes, names, fn.__name__) if names else None
            except gr.Error:
                raise
            except Exception as exc:
                raise _as_message(fn.__name__, exc) from None
    setattr(wrapper, GUARD_MARK, tuple(sorted(guarded)))
    return wrapper


def unguarded_events(blocks: Blocks) -> list[str]:
    """Every event of `blocks` that reads a state its function does not resolve first (`Wiring.event`): by name."""
    found = []
    for block_fn in blocks.fns.values():
        states = tuple(i for i, component in enumerate(block_fn.inputs) if isinstance(component, gr.State))
        if states and getattr(block_fn.fn, GUARD_MARK, None) != states:
            found.append(block_fn.api_name or block_fn.name)
    return found
