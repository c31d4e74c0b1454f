from base64 import b32encode

from core.admin_login import totp_device_add
from core.commands import ApplicationCommand


class Command(ApplicationCommand):
    help = ("Give a staff user a TOTP device for the admin's two-factor login "
            "(ADMIN_REQUIRE_2FA); prints its otpauth:// URI and its secret for the "
            "authenticator app. No command prints them again.")

    def add_arguments(self, parser):
        parser.add_argument("username", help="the staff account that gets the device")
        parser.add_argument("--name", default="authenticator",
                            help="the device's name, which the login form lists")

    def run(self, *args, username, name, **options):
        device = totp_device_add(user=self.user(username), name=name)
        self.stdout.write(device.config_url)
        self.stdout.write(f"secret (base32, to type in): {b32encode(device.bin_key).decode()}")
