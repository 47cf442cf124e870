# A test-only hub key, so the fingerprint clients pin is known at build time
# (services.bento.hub.hostKeyFile). Shared by the VM tests; never use it
# anywhere else.
{ pkgs }:
{
  key = pkgs.writeText "bento-vm-test-hub-key" ''
    -----BEGIN OPENSSH PRIVATE KEY-----
    b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
    QyNTUxOQAAACCrCD+GHvv072Mr/XjrBlVCIj7aaZMGmvIdoBxPC3J2PQAAAJiY88EnmPPB
    JwAAAAtzc2gtZWQyNTUxOQAAACCrCD+GHvv072Mr/XjrBlVCIj7aaZMGmvIdoBxPC3J2PQ
    AAAEDuIcBoUlbAWR+llV2UUlAF/REnGdcVFkaLtHOtIjy/OqsIP4Ye+/TvYyv9eOsGVUIi
    Ptppkwaa8h2gHE8LcnY9AAAAEWJlbnRvLXZtLXRlc3QtaHViAQIDBA==
    -----END OPENSSH PRIVATE KEY-----
  '';
  fingerprint = "SHA256:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30";
}
