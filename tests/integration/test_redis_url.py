"""EFFORT_REDIS_URL with a password and a database, on a real redis-server started with
--requirepass: the journey state and Feast's online store both use them."""

import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from feast.infra.online_stores.helpers import _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from features.catalog import FEATURE_SERVICE_NAME, JOIN_KEY, STATE_NAME, WINDOW_STATE_FIELD
from features.events import ET, Event
from features.journey import compute_features
from features.recorder import StoreUnavailable
from features.store import apply_definitions
from service.feature_reader import FeastFeatureReader, FeatureStoreUnavailable
from service.settings import Settings
from service.stores import open_stores

NOW = float(int(time.time()))
DB = 3


def _url(port: int, password: str | None, db: int = DB) -> str:
    auth = "" if password is None else f":{quote(password, safe='')}@"
    return f"redis://{auth}127.0.0.1:{port}/{db}"


def _contacts(customer: str, count: int) -> list[Event]:
    return [Event(f"{customer}-{i}", customer, NOW - i * 3600.0, ET.EVENT_TYPE_CONTACT, channel=1)
            for i in range(count)]


def test_state_and_feast_use_the_password_and_the_db(protected_redis: tuple[int, str],
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    port, password = protected_redis
    monkeypatch.setenv("EFFORT_REDIS_URL", _url(port, password))
    stores = open_stores(Settings(online_store="redis", feature_repo=tmp_path / "repo"))
    try:
        apply_definitions(stores.feature_store)
        customer = f"U{uuid.uuid4().hex[:8]}"
        outcome = stores.recorder.record_parsed(_contacts(customer, 3), now=NOW)
        assert (outcome.accepted, outcome.duplicates) == (3, 0)
        # Read back through Feast: Effort's reader and Feast's documented path.
        row = FeastFeatureReader(stores.feature_store).read([customer])[0]
        assert row is not None and compute_features(row.events, NOW)["contacts_7d"] == 3
        store = stores.feature_store
        feast = store.get_online_features(
            features=store.get_feature_service(FEATURE_SERVICE_NAME),
            entity_rows=[{JOIN_KEY: customer}]).to_dict()
        assert feast[WINDOW_STATE_FIELD][0] is not None
    finally:
        stores.state.close()

    # Both the journey state and Feast's row are in database 3, and nothing in database 0.
    entity = EntityKeyProto(join_keys=[JOIN_KEY], entity_values=[ValueProto(string_val=customer)])
    feast_key = _redis_key(store.project, entity, entity_key_serialization_version=3)
    with redis.Redis(port=port, password=password, db=DB) as chosen:
        assert chosen.exists(f"effort:{STATE_NAME}:state:{customer}") == 1
        assert chosen.exists(feast_key) == 1
    with redis.Redis(port=port, password=password, db=0) as default:
        assert default.exists(f"effort:{STATE_NAME}:state:{customer}", feast_key) == 0


@pytest.mark.parametrize("password", ["wrong", None], ids=["wrong-password", "no-password"])
def test_a_wrong_or_missing_password_fails_with_an_authentication_error(
        protected_redis: tuple[int, str], tmp_path: Path, password: str | None) -> None:
    port, _ = protected_redis
    stores = open_stores(Settings(online_store="redis", redis_url=_url(port, password),
                                  feature_repo=tmp_path / "repo"))
    try:
        apply_definitions(stores.feature_store)  # registry on local disk: Redis is not asked
        with pytest.raises(StoreUnavailable, match=r"^Authentication\w*Error: "):
            stores.recorder.record_parsed(_contacts(f"X{uuid.uuid4().hex[:8]}", 1), now=NOW)
        with pytest.raises(FeatureStoreUnavailable, match=r"^Authentication\w*Error: "):
            FeastFeatureReader(stores.feature_store).read(["C000001"])
    finally:
        stores.state.close()
