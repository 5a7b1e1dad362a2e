Feature: Consumer protocol
  A consumer delivers every partition of its topics in offset order, once,
  with no gap, repairing what it missed with FETCH.

  Background:
    Given a Dafka mesh on loopback

  Scenario: A store's hello is answered with no topics before any subscription
    Given a consumer with offset reset earliest
    And a scripted store connected to the consumer
    When the scripted store greets the consumer
    Then the consumer answers with a CONSUMER-HELLO listing 0 topics

  Scenario: A store's hello is answered with the consumer's topics
    Given a consumer with offset reset earliest
    And the consumer subscribes to "hello"
    And a scripted store connected to the consumer
    When the scripted store greets the consumer
    Then the consumer answers with a CONSUMER-HELLO listing "hello"

  Scenario: Subscribing with earliest asks the stores for heads
    Given a consumer with offset reset earliest
    And a scripted store connected to the consumer
    When the consumer subscribes to "hello"
    Then the scripted store receives a GET-HEADS for "hello"

  Scenario: A direct head from a store makes an earliest consumer fetch from zero
    Given a consumer with offset reset earliest
    And the consumer subscribes to "hello"
    And a scripted store connected to the consumer
    When the scripted store sends a DIRECT-HEAD for offset 2
    Then the consumer sends a FETCH from offset 0 for 3 records
    When the scripted store answers the FETCH
    Then the consumer delivers offsets 0 to 2

  Scenario: Records deleted by retention before they were read are skipped, not waited for
    Given a consumer with offset reset earliest
    And the consumer subscribes to "hello"
    And a scripted store connected to the consumer
    When the scripted store sends a DIRECT-HEAD for offset 5
    Then the consumer sends a FETCH from offset 0 for 6 records
    When the scripted store answers the FETCH with log start 3
    Then the consumer delivers offsets 3 to 5

  Scenario: A gap is fetched, then everything is delivered in order
    Given a consumer with offset reset earliest
    And the consumer subscribes to "hello"
    And a scripted producer connected to the consumer
    When the scripted producer sends records 0 to 0
    And the scripted producer sends records 2 to 2
    Then the consumer sends a FETCH from offset 1 for 1 record
    When the scripted producer answers the FETCH
    Then the consumer delivers offsets 0 to 2

  Scenario: Latest reset delivers the first record seen and nothing older
    Given a consumer with offset reset latest
    And the consumer subscribes to "hello"
    And a scripted producer connected to the consumer
    When the scripted producer sends records 5 to 6
    Then the consumer delivers offsets 5 to 6

  Scenario: Duplicates are delivered once
    Given a consumer with offset reset latest
    And the consumer subscribes to "hello"
    And a scripted producer connected to the consumer
    When the scripted producer sends records 0 to 1
    And the scripted producer sends records 1 to 1
    And the scripted producer sends records 0 to 2
    Then the consumer delivers offsets 0 to 2

  Scenario: Records that arrive ahead of a gap are kept, not fetched again
    Given a consumer with offset reset latest
    And the consumer subscribes to "hello"
    And a scripted producer connected to the consumer
    When the scripted producer sends records 0 to 0
    And the scripted producer sends records 3 to 4
    Then the consumer sends a FETCH from offset 1 for 2 records
    When the scripted producer answers the FETCH
    Then the consumer delivers offsets 0 to 4

  Scenario: A FETCH answered by both a store and the producer is delivered once
    Given a consumer with offset reset latest
    And the consumer subscribes to "hello"
    And a scripted producer connected to the consumer
    When the scripted producer sends records 0 to 0
    And the scripted producer sends records 2 to 2
    Then the consumer sends a FETCH from offset 1 for 1 record
    When the scripted producer answers the FETCH twice
    And the scripted producer sends records 3 to 3
    Then the consumer delivers offsets 0 to 3

  Scenario: A HEAD past the last record reveals a gap at the end
    Given a consumer with offset reset latest
    And the consumer subscribes to "hello"
    And a scripted producer connected to the consumer
    When the scripted producer sends records 0 to 0
    And the scripted producer sends a HEAD for offset 3
    Then the consumer sends a FETCH from offset 1 for 3 records
    When the scripted producer answers the FETCH
    Then the consumer delivers offsets 0 to 3

  Scenario: An unanswered FETCH is repeated
    Given a consumer with offset reset latest
    And the consumer subscribes to "hello"
    And a scripted producer connected to the consumer
    When the scripted producer sends records 0 to 0
    And the scripted producer sends records 2 to 2
    Then the consumer sends a FETCH from offset 1 for 1 record
    And the consumer sends a FETCH from offset 1 for 1 record
    When the scripted producer answers the FETCH
    Then the consumer delivers offsets 0 to 2

  Scenario: Records of a topic the consumer left are not delivered
    Given a consumer with offset reset latest
    And the consumer subscribes to "hello"
    And the consumer subscribes to "other"
    And a scripted producer connected to the consumer
    When the consumer unsubscribes from "hello"
    And the scripted producer sends records 0 to 1
    And the scripted producer sends records 0 to 0 of "other"
    Then the consumer delivers offset 0 of "other" next

  Scenario: A record at offset 2^64-1 does not stop the consumer
    Given a consumer with offset reset latest
    And the consumer subscribes to "hello"
    And a scripted producer connected to the consumer
    When the scripted producer sends records 0 to 1
    And the scripted producer sends records 18446744073709551615 to 18446744073709551615
    And the scripted producer sends records 2 to 3
    Then the consumer delivers offsets 0 to 3

  Scenario: A run of records in one message is delivered record by record, in order
    Given a consumer with offset reset latest
    And the consumer subscribes to "hello"
    And a scripted producer connected to the consumer
    When the scripted producer sends records 0 to 2
    And the scripted producer sends records 3 to 99 as one run
    And the scripted producer sends records 100 to 101
    Then the consumer delivers offsets 0 to 101

  Scenario Outline: A malformed message is dropped and counted, and the consumer keeps working
    Given a consumer with offset reset latest
    And the consumer subscribes to "hello"
    And a scripted producer connected to the consumer
    When the scripted producer sends a RECORD with <fault>
    And the scripted producer sends records 0 to 1
    Then the consumer delivers offsets 0 to 1
    And the consumer has counted 1 malformed message

    Examples:
      | fault                 |
      | a bad signature       |
      | an unknown version    |
      | a key that does not match its body |
      | a truncated body      |
      | an extra frame        |
      | random bytes          |
      | a 100 MB topic name   |
      | a run longer than its content |
      | a missing frame       |

  Scenario: A named consumer asks for its positions and starts where its name committed
    Given a consumer named "app" with offset reset earliest
    And a scripted store connected to the consumer
    When the consumer subscribes to "hello"
    Then the scripted store receives a GET-POSITIONS of "app" for "hello"
    When the scripted store says "app" is at offset 3
    Then the scripted store receives a GET-HEADS for "hello"
    When the scripted store sends a DIRECT-HEAD for offset 5
    Then the consumer sends a FETCH from offset 3 for 3 records
    When the scripted store answers the FETCH
    Then the consumer delivers offsets 3 to 5

  Scenario: A consumer starting at a time asks the stores where it falls and starts there
    Given a consumer starting at time 1004500
    And a scripted store connected to the consumer
    When the consumer subscribes to "hello"
    Then the scripted store receives a GET-POSITIONS for time 1004500 in "hello"
    When the scripted store says time 1004500 is at offset 5
    Then the scripted store receives a GET-HEADS for "hello"
    When the scripted store sends a DIRECT-HEAD for offset 7
    Then the consumer sends a FETCH from offset 5 for 3 records
    When the scripted store answers the FETCH
    Then the consumer delivers offsets 5 to 7

  Scenario: A group member reads a partition until a member that ranks it first is heard of
    Given a consumer in group "workers" with offset reset earliest
    And a scripted store connected to the consumer
    When the consumer subscribes to "hello"
    And the scripted store says "workers" is at offset 0
    And the scripted store sends a DIRECT-HEAD for offset 2
    # The partition is this member's (it is alone): positions are asked again.
    Then the scripted store receives a GET-POSITIONS of "workers" for "hello"
    When the scripted store says "workers" is at offset 0
    And the scripted store sends a DIRECT-HEAD for offset 2
    Then the consumer sends a FETCH from offset 0 for 3 records
    When the scripted store answers the FETCH
    Then the consumer delivers offsets 0 to 2
    And the consumer says the partition is assigned to it
    # Until its beacon arrives, both members think the partition theirs.
    When a member of group "workers" that ranks the partition first joins
    Then the consumer says the partition is revoked

  Scenario: A named consumer commits what the application processed until a store acknowledges it
    Given a consumer named "app" with offset reset earliest
    And a scripted store connected to the consumer
    And the consumer subscribes to "hello"
    And the scripted store says "app" is at offset 0
    When the scripted store sends a DIRECT-HEAD for offset 4
    Then the consumer sends a FETCH from offset 0 for 5 records
    When the scripted store answers the FETCH
    Then the consumer delivers offsets 0 to 4
    When the application commits offset 4 of the stored partition
    Then the scripted store receives a COMMIT of "app" at offset 5
    When the scripted store acknowledges the COMMIT
    Then the consumer has nothing left to commit
