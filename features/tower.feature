Feature: Discovery through towers
  Towers introduce nodes to each other and carry nothing else.

  Background:
    Given a Dafka mesh on loopback

  Scenario: Two nodes find each other through the tower
    Given a scripted store "a"
    And a scripted store "b"
    Then node "a" is connected to 1 peer
    And node "b" is connected to 1 peer

  Scenario: A joining node learns the existing peers at once, not at their next beacon
    Given beacons every 60000 ms
    And a scripted store "a"
    And node "a" has reached the tower
    When a scripted store "b" joins
    Then node "b" is connected to 1 peer

  Scenario: A peer that falls silent is dropped
    Given a scripted store "a"
    And a scripted store "b"
    And node "b" is connected to 1 peer
    When node "a" falls silent
    Then node "b" is connected to 0 peers

  Scenario: A leaving peer is dropped at once, not at its timeout
    Given beacons every 60000 ms
    And a scripted store "a"
    And node "a" has reached the tower
    And a scripted store "b"
    And node "b" is connected to 1 peer
    When node "a" leaves
    Then node "b" is connected to 0 peers

  Scenario: The tower drops garbage and keeps forwarding beacons
    Given a scripted store "b"
    When garbage and then a beacon for a node "x" reach the tower
    Then node "b" is connected to 1 peer
    And the tower has counted 1 malformed message

  Scenario: A beacon with an endpoint nobody can use stops no node
    Given a scripted store "b"
    And a scripted store "c"
    And node "b" is connected to 1 peer
    When a beacon for a store "x" at "nope://x" reaches the tower
    And a scripted store "d" joins
    Then node "d" is connected to at least 2 peers
    And node "b" is connected to at least 2 peers
