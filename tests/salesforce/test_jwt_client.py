"""JWT bearer flow from the client: RS256 assertion signed with a private key file, verified by the emulator."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from running_emulator import started
from sf_support import connection_for

from destination.salesforce.client import SalesforceClient
from destination.salesforce.connection import AuthMethod, AuthSettings
from salesforce_emulator.state import build_state


async def test_jwt_bearer_with_a_private_key_file(tmp_path: Path, tls_dir: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "server.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    org = tmp_path / "org.yaml"
    org.write_text("extends: default\nclients:\n  - client_id: jwt-app\n    jwt_public_key: |\n"
                   + "\n".join("        " + line for line in public.strip().splitlines()) + "\n")
    auth = AuthSettings(AuthMethod.JWT_BEARER, "jwt-app", username="admin@emulator.test", private_key_file=key_file)
    with started(build_state(org), tls_dir=tls_dir) as emulator:
        async with SalesforceClient(connection_for(emulator, auth)) as client:
            limits = await client.limits()
            assert limits["DailyApiRequests"]["Max"] == 100000
            assert (await client.tokens.token()).refresh_token is None
