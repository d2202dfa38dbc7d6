#!/usr/bin/perl
# A CRM's side of callfleet's XML-RPC API in Perl, with RPC::XML (Debian: librpc-xml-perl) as
# it comes: it sends a digit string such as the extension "4351" as <int>4351</int>, a caller
# number "+4930999" as <int>+4930999</int> and "0100" as <int>0100</int>.
#
# Usage: crm_client.pl URL EXT DEVICE QUEUE
#   URL is the node's base (http://127.0.0.1:8080); CALLFLEET_TOKEN, when set, is sent as
#   "Authorization: Bearer". Prints one JSON object: step -> result, or {"fault", "message"};
#   "xml.login" is the request body RPC::XML made for agent.login.
use strict;
use warnings;

use JSON::PP;
use RPC::XML;
use RPC::XML::Client;

@ARGV == 4 or die "usage: crm_client.pl URL EXT DEVICE QUEUE\n";
my ($base, $ext, $device, $queue) = @ARGV;

my $client = RPC::XML::Client->new("$base/RPC2");
if (my $token = $ENV{CALLFLEET_TOKEN}) {
    $client->useragent->default_header(Authorization => "Bearer $token");
}
$client->useragent->timeout(10);

# One call: its result as plain Perl data, or {fault, message}.
sub call {
    my ($method, @params) = @_;
    my $r = $client->send_request($method, @params);
    die "$method: $r\n" unless ref $r;
    if ($r->is_fault) {
        return { fault => $r->code + 0, message => $r->string };
    }
    my $v = $r->value;
    return $v ? JSON::PP::true : JSON::PP::false if $r->type eq 'boolean';
    return $v + 0 if $r->type =~ /^(int|i4|i8)$/;
    return $v;
}

my %r;
$r{'xml.login'} = RPC::XML::request->new('agent.login', $ext, $device)->as_string;
$r{login} = call('agent.login', $ext, $device);
$r{status} = call('agent.status', $ext);
$r{setTier} = call('agent.setTier', $ext, $queue, 3);
$r{sale} = call('agent.recordSale', $ext);
$r{'vip.plus'} = call('vip.add', '+4930999', $queue);
$r{'vip.zero'} = call('vip.add', '0100', $queue);
$r{stats} = call('queue.stats', $queue);
$r{logout} = call('agent.logout', $ext);
$r{'f.unknown'} = call('agent.status', '9999');
$r{'f.i8'} = call('agent.status', '12345678901');
$r{'f.boolean'} = call('agent.status', RPC::XML::boolean->new(1));
$r{'f.double'} = call('agent.status', RPC::XML::double->new(4351.5));

# Booleans inside structs come back as 1/0 scalars; JSON::PP prints them as numbers.
print JSON::PP->new->canonical->allow_blessed->convert_blessed->encode(\%r), "\n";
