import os
from pathlib import Path

from django.core.management.base import BaseCommand

from releases.demo import demo_load


class Command(BaseCommand):
    help = "Create the demo team, users, services and environments (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--jenkins-url", default=os.environ.get("SLIPWAY_DEMO_JENKINS_URL", ""))
        parser.add_argument(
            "--jenkins-user", default=os.environ.get("SLIPWAY_DEMO_JENKINS_USER", "")
        )
        parser.add_argument(
            "--kubeconfig-file", default=os.environ.get("SLIPWAY_DEMO_KUBECONFIG", "")
        )

    def handle(self, *args, jenkins_url, jenkins_user, kubeconfig_file, **options):
        kubeconfig = Path(kubeconfig_file).read_text() if kubeconfig_file else ""
        passwords = demo_load(
            jenkins_url=jenkins_url,
            jenkins_user=jenkins_user,
            jenkins_token=os.environ.get("SLIPWAY_DEMO_JENKINS_TOKEN", ""),
            kubeconfig=kubeconfig,
            prometheus_url=os.environ.get("SLIPWAY_DEMO_PROMETHEUS_URL", ""),
            jenkins_notify_secret=os.environ.get("SLIPWAY_DEMO_JENKINS_NOTIFY_SECRET", ""),
            drone_url=os.environ.get("SLIPWAY_DEMO_DRONE_URL", ""),
            drone_token=os.environ.get("SLIPWAY_DEMO_DRONE_TOKEN", ""),
            catalog_url=os.environ.get("SLIPWAY_DEMO_CATALOG_URL", ""),
            changes_url=os.environ.get("SLIPWAY_DEMO_CHANGES_URL", ""),
            changes_password=os.environ.get("SLIPWAY_DEMO_CHANGES_PASSWORD", ""),
        )
        self.stdout.write("Demo users (log in at http://127.0.0.1:8000/):")
        for name, password in passwords.items():
            self.stdout.write(f"  {name:6} {password}")
