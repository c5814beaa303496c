"""An erasure made by another process reaches this one's memory within one sweep (privacy/lifecycle/memory_sweep.py).

"This process" holds a photo draft and an owner key per session, as a web replica does; "another process" (its
own engine on the same database, its own erasure context whose hooks know nothing of this one's memory) erases.
"""

import pytest

from privacy.intake.photo_set import PhotoDraft, PhotoDrafts
from privacy.lifecycle.erasure import ErasureContext, erase_categories, erase_now
from privacy.lifecycle.memory_sweep import MemorySweep
from privacy.store.database import Database
from privacy.store.owner_presence import OwnerPresence
from privacy.store.vault import IDENTITY, Vault
from tests.privacy.helpers import consented_session, generate

pytestmark = pytest.mark.databases("sqlite", "postgresql")


class Replica:
    """What one web replica keeps in memory, and its sweep."""

    def __init__(self, env):
        self.drafts, self.presence, self.links = PhotoDrafts(), OwnerPresence(), set()
        hooks = [self.drafts.forget_session, self.presence.forget_session, self.links.discard]
        self.sweep = MemorySweep(env.db, holders=[self.drafts, self.presence], hooks=hooks,
                                 identity_hooks=[self.drafts.forget_session], clock=env.clock)

    def hold(self, session_id: str) -> None:
        self.drafts.put(session_id, PhotoDraft(photos=()))
        self.presence.hold(session_id, b"k" * 32, tab=f"tab-{session_id}")
        self.links.add(session_id)


@pytest.fixture
def elsewhere(env):
    """Another process on the same database: its erasures run none of this replica's hooks."""
    db = Database(env.settings.database)
    yield ErasureContext(db=db, vault=Vault(db, env.settings.blob_dir, b"m" * 32, env.clock), signer=env.ctx.signer,
                         settings=env.settings, clock=env.clock)
    db.dispose()


def test_a_session_deleted_through_another_replica_leaves_this_ones_memory_at_the_next_sweep(env, elsewhere):
    here = Replica(env)
    erased, kept = consented_session(env), consented_session(env)
    here.hold(erased)
    here.hold(kept)

    erase_now(elsewhere, erased)
    assert erased in here.drafts.held_sessions()  # the other process could not reach this memory

    result = here.sweep.run_once()

    assert result.gone == {erased} and result.identity_gone == set()
    assert here.drafts.held_sessions() == {kept} and here.presence.held_sessions() == {kept}
    assert here.presence.key_of(erased) is None and here.links == {kept}
    assert here.sweep.run_once().gone == set()  # nothing held of it any more: nothing to do again


def test_identity_data_erased_elsewhere_takes_the_photo_draft_and_leaves_the_key_for_the_headshots(env, elsewhere):
    here = Replica(env)
    session_id = consented_session(env)
    generate(env, session_id)
    here.hold(session_id)

    erase_categories(elsewhere, session_id, [IDENTITY])
    result = here.sweep.run_once()

    assert result.identity_gone == {session_id} and result.gone == set()
    assert here.drafts.held_sessions() == set()
    assert here.presence.key_of(session_id) is not None and here.links == {session_id}  # headshots still theirs


def test_a_draft_past_its_identity_erasure_time_goes_even_before_the_schedule_runs(env):
    here = Replica(env)
    session_id = consented_session(env)
    here.hold(session_id)
    assert here.sweep.run_once().identity_gone == set()

    env.clock.advance(env.policy.session_hard_cap_seconds + 1)  # no headshots yet: the cap from consent counts

    assert here.sweep.run_once().identity_gone == {session_id}
    assert here.drafts.held_sessions() == set()


def test_a_failing_step_does_not_keep_the_others_from_running(env, elsewhere):
    here = Replica(env)

    def broken(session_id):
        raise RuntimeError("a cache went away")

    here.sweep.hooks.insert(0, broken)
    session_id = consented_session(env)
    here.hold(session_id)
    erase_now(elsewhere, session_id)

    assert here.sweep.run_once().gone == {session_id}
    assert here.drafts.held_sessions() == set() and here.presence.held_sessions() == set()


def test_a_replica_holding_nothing_asks_the_database_nothing(env):
    here = Replica(env)
    env.db.dispose()
    here.sweep.db = None  # any query would fail
    assert here.sweep.run_once().gone == set()


def test_many_held_sessions_are_asked_for_in_bounded_queries(env, elsewhere):
    here = Replica(env)
    sessions = [consented_session(env, photos=0, adapter=False) for _ in range(3)]
    for session_id in sessions:
        here.hold(session_id)
    for i in range(1200):  # ids of sessions long gone, e.g. of a process that outlived a database restore
        here.presence.hold(f"gone-{i:05d}", b"k" * 32, tab=f"tab-gone-{i}")
    erase_now(elsewhere, sessions[0])

    result = here.sweep.run_once()

    assert result.gone == {sessions[0], *(f"gone-{i:05d}" for i in range(1200))}
    assert here.presence.held_sessions() == set(sessions[1:])
