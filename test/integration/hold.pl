#!/usr/bin/perl
# Opens N connections to vmmd's socket, sends nothing on them, and prints
# how many vmmd left open after FIRST seconds and after LAST seconds:
#   "opened N open_after_FIRST A open_after_LAST B"
# With GO_FILE, waits after the first count until that file exists (the
# test runs its checks meanwhile). perl-base only.
#   hold.pl SOCKET N FIRST LAST [GO_FILE]
use strict;
use warnings;
use IO::Socket::UNIX;
use IO::Select;
use Time::HiRes qw(sleep time);

my ($path, $n, $first, $last, $go) = @ARGV;
my @s;
for (1 .. $n) {
	my $c = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path);
	last if !$c; # the backlog is full or vmmd refused: count what we have
	push @s, $c;
}

# A connection vmmd closed (or refused with a reply) is readable.
sub still_open {
	my $sel = IO::Select->new(@s);
	my %closed = map { $_ => 1 } $sel->can_read(0);
	return scalar(grep { !$closed{$_} } @s);
}

sleep($first);
my $a = still_open();
print "opened ", scalar(@s), " open_after_$first $a ";
$| = 1;
if ($go) {
	my $t0 = time;
	sleep(0.2) while !-e $go && time - $t0 < 120;
}
sleep($last - $first) if $last > $first;
print "open_after_$last ", still_open(), "\n";
