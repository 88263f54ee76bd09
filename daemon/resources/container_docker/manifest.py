"""Keywords of the docker container driver."""

from __future__ import annotations

from daemon.config import converters as c
from daemon.config.keywords import Inherit, Keyword, Manifest, merge
from daemon.resources.keywords import GENERIC, driver_type

TYPES = ("docker",)

MANIFEST = Manifest(
    group="container",
    type="docker",
    help="A Docker container, in the service's private engine when docker_data_dir is set.",
    keywords=merge(
        GENERIC,
        (
            driver_type(TYPES, "docker"),
            Keyword(
                "image",
                "The image to run: name[:tag] or image id.",
                required=True,
                scopable=True,
                example="image = opensvc/nginx:build5",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "name",
                "The container name.",
                scopable=True,
                default_text="<svcname>.<group>.<name>, e.g. svc1.container.0",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "rm",
                "Remove the container when it stops (docker run --rm).",
                c.BOOLEAN,
                default=False,
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "netns",
                "Network namespace: container#N to share that container's, host, or none.",
                scopable=True,
                example="netns = container#0",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "command",
                "Arguments given to the image's entrypoint (shell words).",
                c.SHELL_WORDS,
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "entrypoint",
                "Replaces the image's entrypoint (shell words).",
                c.SHELL_WORDS,
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "environment",
                "Environment variables, KEY=VALUE shell words.",
                c.SHELL_WORDS,
                scopable=True,
                example="environment = LANG=C MODE=prod",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "volume_mounts",
                "Bind mounts, host:container[:ro] words.",
                c.LIST,
                scopable=True,
                example="volume_mounts = /srv/{svcname}/data:/data",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "hostname",
                "The container's hostname.",
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "privileged",
                "Run the container privileged.",
                c.BOOLEAN,
                default=False,
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "start_timeout",
                "How long a start may take before it fails.",
                c.DURATION,
                default=60,
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "stop_timeout",
                "Grace period given to the container to stop before it is killed.",
                c.DURATION,
                default=10,
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
        ),
    ),
)
